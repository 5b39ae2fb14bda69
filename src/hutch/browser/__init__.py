"""Agents at a computer: a real browser an agent drives, its screenshots, and the live view."""
