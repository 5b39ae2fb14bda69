"""Creator accounts on Telegram, through Telethon (MTProto): BotFather's chat, health checks, logging in.

This module is deliberately thin: everything that decides something (what to type, what an answer means,
which account to use) lives in ``botfather.py`` and ``service.py`` and is tested against a fake transport.
Here, each operation opens a client from the account's saved session, does one thing, and disconnects, so
no connection to Telegram outlives a job.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from hutch.botfactory.botfather import AccountProblem, BotFatherTransport
from hutch.botfactory.models import AccountStatus

BOTFATHER = "BotFather"


@dataclass(frozen=True)
class AccountCredentials:
    phone: str
    api_id: int
    api_hash: str
    session: str  # Telethon StringSession


@dataclass(frozen=True)
class HealthReport:
    status: AccountStatus
    detail: str | None = None  # why it is not active


class CreatorClients(Protocol):
    def botfather(self, account: AccountCredentials) -> AbstractAsyncContextManager[BotFatherTransport]:
        """A chat with @BotFather as this account; raises AccountProblem when the account cannot log in."""
        ...

    async def check(self, account: AccountCredentials) -> HealthReport: ...


class TelethonConversation:
    """BotFatherTransport over a Telethon conversation."""

    def __init__(self, conversation: Any) -> None:
        self.conversation = conversation

    async def send(self, text: str) -> None:
        await self.conversation.send_message(text)

    async def send_photo(self, data: bytes, filename: str) -> None:
        photo = io.BytesIO(data)
        photo.name = filename  # Telethon picks the upload's type from the name
        await self.conversation.send_file(photo)

    async def reply(self, wait: float) -> str:
        message = await self.conversation.get_response(timeout=wait)
        return str(message.raw_text or "")


def is_session(value: str) -> bool:
    """Whether ``value`` is a saved Telethon StringSession (what logging an account in produces)."""
    from telethon.sessions import StringSession  # imported on use: only the factory needs Telethon

    try:
        StringSession(value)
    except ValueError:
        return False
    return value.startswith("1")


def _client(account: AccountCredentials) -> Any:
    from telethon import TelegramClient
    from telethon.sessions import StringSession

    try:
        session = StringSession(account.session)
    except ValueError:
        raise AccountProblem(
            "the stored session is not a valid Telethon session; add the account again"
        ) from None
    return TelegramClient(session, account.api_id, account.api_hash)


class TelethonClients:
    @asynccontextmanager
    async def botfather(self, account: AccountCredentials) -> AsyncIterator[BotFatherTransport]:
        client = _client(account)
        await client.connect()
        try:
            if not await client.is_user_authorized():
                raise AccountProblem("the account's session is logged out; add the account again")
            async with client.conversation(BOTFATHER, timeout=600, exclusive=True) as conversation:
                yield TelethonConversation(conversation)
        finally:
            await client.disconnect()

    async def check(self, account: AccountCredentials) -> HealthReport:
        from telethon import errors

        try:
            client = _client(account)
        except AccountProblem as problem:
            return HealthReport(AccountStatus.LOCKED, str(problem))
        try:
            await client.connect()
            if not await client.is_user_authorized():
                return HealthReport(AccountStatus.LOCKED, "the session is logged out; add the account again")
            me = await client.get_me()
        except (errors.UserDeactivatedBanError, errors.UserDeactivatedError, errors.PhoneNumberBannedError):
            return HealthReport(AccountStatus.BANNED, "Telegram deactivated the account")
        except (errors.AuthKeyUnregisteredError, errors.SessionRevokedError, errors.AuthKeyDuplicatedError):
            return HealthReport(AccountStatus.LOCKED, "the session was revoked; add the account again")
        except (errors.RPCError, OSError, ConnectionError) as error:
            return HealthReport(
                AccountStatus.UNKNOWN, f"Telegram could not be asked: {error.__class__.__name__}"
            )
        finally:
            await client.disconnect()
        if getattr(me, "restricted", False):
            reasons = getattr(me, "restriction_reason", None) or []
            text = "; ".join(getattr(r, "text", "") for r in reasons) or "restricted by Telegram"
            return HealthReport(AccountStatus.LOCKED, text)
        return HealthReport(AccountStatus.ACTIVE)


async def log_in(
    phone: str,
    api_id: int,
    api_hash: str,
    ask_code: Callable[[], Awaitable[str]],
    ask_password: Callable[[], Awaitable[str]],
) -> str:
    """Telegram's login for a creator account (the code arrives in the Telegram app, then the 2FA password
    if the account has one); returns the session to store."""
    from telethon import errors

    client = _client(AccountCredentials(phone, api_id, api_hash, ""))
    await client.connect()
    try:
        sent = await client.send_code_request(phone)
        try:
            await client.sign_in(phone, await ask_code(), phone_code_hash=sent.phone_code_hash)
        except errors.SessionPasswordNeededError:
            await client.sign_in(password=await ask_password())
        return str(client.session.save())
    finally:
        await client.disconnect()
