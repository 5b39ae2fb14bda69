"""Telegram bots made for customers: creator accounts, BotFather automation, ownership checks."""
