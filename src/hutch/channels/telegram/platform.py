"""The operator's shared Telegram bot, through which users reach their personal agents.

A user links their Telegram account from the dashboard: Hutch hands out a one-time deep link
``t.me/<bot>?start=<code>``; opening it makes Telegram send ``/start <code>`` from the user's chat, which
binds that chat id to the user's personal agent. Messages are then routed by chat id.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from hutch.channels.links import personal_agent, retire_pending_links
from hutch.channels.models import ChannelLink, LinkStatus
from hutch.channels.repository import LinkRepository
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.core.errors import ServiceUnavailable
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.i18n import N_, _
from hutch.settings import Settings

PLATFORM = "platform"  # the channel id of the platform bot in webhook paths and inbox sources
CHANNEL = "telegram"
LINK_CODE_MINUTES = 30
SETUP_JOB = "channels.telegram_platform_setup"
# The platform bot's menu; marked for the catalogues, to be translated where it is set.
COMMANDS = [
    ("start", N_("Start talking with your assistant")),
    ("help", N_("What I can do")),
    ("reset", N_("Start a new conversation")),
    ("balance", N_("Prepaid credits and time left")),
]


def platform_commands() -> list[tuple[str, str]]:
    """The platform bot's menu, in the language of the moment."""
    return [(command, _(description)) for command, description in COMMANDS]


class PlatformBotNotConfigured(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "This service has no platform Telegram bot (HUTCH_TELEGRAM_BOT_TOKEN); connect your own bot to "
            "the agent instead (POST /api/v1/agents/{id}/channels/telegram)."
        )


def platform_token(settings: Settings) -> str | None:
    token = settings.telegram_bot_token
    return token.get_secret_value() if token is not None and settings.secret_key is not None else None


def platform_secret(settings: Settings) -> str:
    """The webhook secret Telegram echoes for the platform bot, derived so every process agrees on it."""
    assert settings.secret_key is not None
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"hutch:telegram-platform-webhook", sha256).hexdigest()


def link_code_hash(code: str) -> str:
    return sha256_hex(f"telegram:{code}")


_usernames: dict[str, str] = {}  # token → the bot's @username, asked once per process


async def platform_username(settings: Settings, gateway: TelegramGateway) -> str:
    token = platform_token(settings)
    if token is None:
        raise PlatformBotNotConfigured()
    if token not in _usernames:
        _usernames[token] = (await gateway.identify(token)).username
    return _usernames[token]


async def start_telegram_link(
    uow: UnitOfWork, principal: Principal, agent_id: str | None, username: str | None
) -> tuple[ChannelLink, str]:
    """A pending link to the user's personal agent, and the one-time code for the deep link."""
    agent = await personal_agent(uow, principal, agent_id)
    assert principal.user_id is not None
    await retire_pending_links(uow, principal.user_id, CHANNEL)
    code = secrets.token_urlsafe(24)  # 32 characters of Telegram's allowed [A-Za-z0-9_-]
    link = ChannelLink(
        id=new_id("lnk"),
        org_id=principal.org_id,
        user_id=principal.user_id,
        agent_id=agent.id,
        channel=CHANNEL,
        address="",  # the chat id, known when the user opens the link
        expected_username=username.removeprefix("@").lower() if username else None,
        status=LinkStatus.PENDING,
        code_hash=link_code_hash(code),
        code_expires_at=datetime.now(UTC) + timedelta(minutes=LINK_CODE_MINUTES),
    )
    LinkRepository(uow.session).add(link)
    await uow.session.flush()
    return link, code


async def confirm_telegram_link(
    uow: UnitOfWork, code: str, chat_id: str, username: str | None
) -> ChannelLink | None:
    """Bind the chat that sent ``/start <code>`` to the waiting link; None for an unknown or expired code
    (or one meant for another Telegram user)."""
    links = LinkRepository(uow.session)
    now = datetime.now(UTC)
    pending = await links.pending_by_code_for_update(link_code_hash(code), now)
    if pending is None:
        return None
    if pending.expected_username and pending.expected_username != (username or "").lower():
        return None
    # The chat now belongs to this user's assistant; an older link of the chat ends.
    await links.end_active_at(CHANNEL, chat_id, now)
    await uow.session.flush()
    pending.status, pending.address, pending.last_inbound_at = LinkStatus.ACTIVE, chat_id, now
    pending.code_expires_at = now  # the code is spent
    return pending


async def linked_chat(uow: UnitOfWork, chat_id: str) -> ChannelLink | None:
    return await LinkRepository(uow.session).active_at(CHANNEL, chat_id)
