"""Conversations and their messages, per agent, channel and end user."""
