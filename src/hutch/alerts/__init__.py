"""Alerts for the platform's operators: raised by any domain, delivered and shown by admin."""
