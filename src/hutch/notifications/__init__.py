"""Outbound notifications: email (SMTP), later Telegram admin alerts and outgoing webhooks."""
