"""The channel tests' Telegram deployment, shared with these."""

from tests.channels.test_telegram import on_telegram  # noqa: F401 (a fixture)
