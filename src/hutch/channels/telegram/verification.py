"""Ownership of a factory-made bot: a code shown in the dashboard, sent to the bot by its future owner.

The code works once, until it expires, and only for its own bot; ten wrong guesses void it. Whoever sends
it first becomes the owner: their Telegram user id is recorded and the bot starts answering.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent, Audience
from hutch.botfactory.models import BotVerification
from hutch.channels.models import Channel, ChannelStatus
from hutch.core.errors import Conflict, NotFound
from hutch.core.security import SecretBox
from hutch.i18n import N_, _

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
CODE_LENGTH = 8
MAX_FAILED_ATTEMPTS = 10

# Said in the language of the chat (hutch.turns.language): translated where used.
SETTING_UP = N_(
    "This bot is being set up. Its owner activates it by sending the verification code shown in the "
    "dashboard (Agent → Channels)."
)
WRONG_CODE = N_(
    "That is not this bot's verification code. Check the code in the dashboard and send it again."
)
EXPIRED_CODE = N_(
    "This verification code is no longer valid. Ask the dashboard for a new one (Agent → Channels) "
    "and send it."
)
PRIVATE = N_("This is a private assistant; only its owner can talk to it.")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _position in range(CODE_LENGTH))


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


@dataclass(frozen=True)
class IssuedCode:
    code: str
    deep_link: str
    expires_at: datetime


class Verifications:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box

    async def issue(self, channel: Channel, lifetime: timedelta) -> IssuedCode:
        """A fresh code for a bot still waiting for its owner (the previous code stops working)."""
        if channel.status is not ChannelStatus.UNVERIFIED:
            raise Conflict("This bot already has a verified owner.")
        code, expires_at = new_code(), datetime.now(UTC) + lifetime
        verification = await self.session.get(BotVerification, channel.id, with_for_update=True)
        if verification is None:
            verification = BotVerification(channel_id=channel.id, org_id=channel.org_id)
            self.session.add(verification)
        verification.code_encrypted = self.secret_box.encrypt(code)
        verification.expires_at, verification.failed_attempts = expires_at, 0
        await self.session.flush()
        return IssuedCode(code, deep_link(channel.username or "", code), expires_at)

    def shown(self, verification: BotVerification, channel: Channel) -> IssuedCode | None:
        """The code for the dashboard, while it can still be used."""
        if verification.verified_at is not None or verification.expires_at <= datetime.now(UTC):
            return None
        if verification.failed_attempts >= MAX_FAILED_ATTEMPTS:
            return None
        code = self.secret_box.decrypt(verification.code_encrypted)
        return IssuedCode(code, deep_link(channel.username or "", code), verification.expires_at)

    async def answer(self, channel: Channel, text: str, sender_id: str, sender_username: str | None) -> str:
        """The bot's reply to a message sent before it has an owner; the right code makes the sender it."""
        verification = await self.session.get(BotVerification, channel.id, with_for_update=True)
        if verification is None:
            raise NotFound("Verification")
        candidate = _candidate(text)
        if candidate is None:
            return _(SETTING_UP)
        if (
            verification.expires_at <= datetime.now(UTC)
            or verification.failed_attempts >= MAX_FAILED_ATTEMPTS
        ):
            return _(EXPIRED_CODE)
        expected = self.secret_box.decrypt(verification.code_encrypted)
        if not hmac.compare_digest(candidate.upper().encode(), expected.encode()):
            verification.failed_attempts += 1
            return _(WRONG_CODE)
        verification.verified_at = datetime.now(UTC)
        verification.owner_telegram_id, verification.owner_username = sender_id, sender_username
        channel.status, channel.owner_external_id, channel.last_error = ChannelStatus.ACTIVE, sender_id, None
        agent = await self.session.get(Agent, channel.agent_id)
        name = agent.name if agent is not None else _("your assistant")
        return _(
            "Verified: you own this bot now. {name} answers here from now on; write a message to start."
        ).format(name=name)


def _candidate(text: str) -> str | None:
    """The code in "/start CODE" or a bare "CODE"; None for anything else."""
    words = text.strip().split()
    if len(words) == 2 and words[0].split("@")[0].lower() == "/start":
        word = words[1]
    elif len(words) == 1 and len(words[0]) == CODE_LENGTH:  # a bare code; other chatter is not a guess
        word = words[0]
    else:
        return None
    return word if 4 <= len(word) <= 64 and word.isalnum() else None


def may_talk(channel: Channel, agent: Agent, sender_id: str) -> bool:
    """A personal agent on a bot with a verified owner answers only that owner."""
    if channel.owner_external_id is None or agent.audience is not Audience.PERSONAL:
        return True
    return channel.owner_external_id == sender_id
