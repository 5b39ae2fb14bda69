"""The channel tests' Telegram deployment and web chat widget, shared with these."""

from tests.channels.test_platform_bot import platform  # noqa: F401 (a fixture)
from tests.channels.test_telegram import on_telegram  # noqa: F401 (a fixture)
from tests.channels.test_webchat import widget  # noqa: F401 (a fixture)
