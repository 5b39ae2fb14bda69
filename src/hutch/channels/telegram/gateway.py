"""The Telegram Bot API through python-telegram-bot, at ``HUTCH_TELEGRAM_API_BASE``.

Sending splits text above Telegram's 4096-character limit at line or word boundaries, waits out a 429's
``retry_after`` (a few times), and reports a user who blocked the bot as :class:`BotBlocked` rather
than an error to retry.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardMarkup,
    InputProfilePhotoStatic,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

from hutch.channels.telegram.transport import SharedTelegramSession
from hutch.core.errors import BadRequest, ServiceUnavailable

MAX_MESSAGE = 4096
MAX_RETRY_AFTER_SECONDS = 30
SEND_ATTEMPTS = 4
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
Buttons = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class BotBlocked(Exception):
    """The user blocked the bot (or deleted the chat): nothing can be sent until they return."""


class FileTooLarge(Exception):
    """A file someone sent is larger than Hutch reads."""


class FileUnavailable(Exception):
    """Telegram could not hand over a file someone sent; the message says why."""


class TokenRejected(BadRequest):
    def __init__(self) -> None:
        super().__init__("Telegram rejected this bot token; copy it again from @BotFather.")


class ManagedBotUnavailable(BadRequest):
    def __init__(self, why: str) -> None:
        super().__init__(f"Telegram did not hand over the managed bot's token: {why}")


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str
    can_manage_bots: bool = False  # bot management is enabled for it in @BotFather


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a paragraph, line or word boundary when possible."""
    pieces: list[str] = []
    rest = text.strip() or "…"
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return pieces


MAX_CACHED_BOTS = 256


class TelegramGateway:
    def __init__(self, api_base: str) -> None:
        self.base_url = api_base.rstrip("/") + "/bot"
        self.file_url = api_base.rstrip("/") + "/file/bot"  # where getFile's files are downloaded
        self._http = SharedTelegramSession()  # every bot's requests, over the same warm connections
        self._bots: OrderedDict[str, Bot] = OrderedDict()  # by token: a bot is cheap, but not free to make

    async def close(self) -> None:
        self._bots.clear()
        await self._http.close()

    @asynccontextmanager
    async def bot(self, token: str) -> AsyncIterator[Bot]:
        bot = self._bots.get(token)
        if bot is None:
            bot = Bot(
                token,
                base_url=self.base_url,
                base_file_url=self.file_url,
                request=self._http,
                get_updates_request=self._http,
            )
            self._bots[token] = bot
            if len(self._bots) > MAX_CACHED_BOTS:
                self._bots.popitem(last=False)  # it holds no connection of its own
        self._bots.move_to_end(token)
        yield bot

    async def identify(self, token: str) -> BotIdentity:
        """The bot behind ``token`` (``getMe``), or 400 when Telegram does not know it."""
        try:
            async with self.bot(token) as bot:
                me = await bot.get_me()
        except (InvalidToken, Forbidden):
            raise TokenRejected() from None
        except TelegramError as exc:
            if "unauthorized" in str(exc).lower() or "not found" in str(exc).lower():
                raise TokenRejected() from None
            raise ServiceUnavailable(f"Telegram did not answer ({exc}); try again in a moment.") from None
        return BotIdentity(me.id, me.username or str(me.id), bool(me.can_manage_bots))

    async def set_webhook(
        self, token: str, url: str, secret: str, allowed_updates: list[str] | None = None
    ) -> None:
        try:
            async with self.bot(token) as bot:
                await bot.set_webhook(
                    url, secret_token=secret, allowed_updates=allowed_updates or ALLOWED_UPDATES
                )
        except TelegramError as exc:
            raise BadRequest(f"Telegram refused the webhook {url}: {exc}. Check HUTCH_PUBLIC_URL.") from None

    async def delete_webhook(self, token: str) -> None:
        try:
            async with self.bot(token) as bot:
                await bot.delete_webhook()
        except (InvalidToken, Forbidden):
            return  # a revoked token has no webhook left to remove
        except TelegramError as exc:
            raise ServiceUnavailable(f"Telegram did not answer ({exc}); try again in a moment.") from None

    async def set_commands(
        self, token: str, commands: list[tuple[str, str]], language_code: str = ""
    ) -> None:
        """The bot's menu of commands for users whose app speaks ``language_code`` (a two-letter code), or
        with ``""`` for everyone without a menu in their language."""
        async with self.bot(token) as bot:
            await bot.set_my_commands(
                [BotCommand(name, description) for name, description in commands],
                language_code=language_code or None,
            )

    async def managed_bot_token(self, manager_token: str, bot_id: int) -> str:
        """The current token of a bot that ``manager_token``'s bot manages (``getManagedBotToken``); 400
        when Telegram refuses (the bot was deleted, or is not managed by it)."""
        try:
            async with self.bot(manager_token) as bot:
                return await bot.get_managed_bot_token(bot_id)
        except (TelegramBadRequest, Forbidden) as exc:
            raise ManagedBotUnavailable(str(exc)) from None
        except TelegramError as exc:
            raise ServiceUnavailable(f"Telegram did not answer ({exc}); try again in a moment.") from None

    async def set_profile(
        self,
        token: str,
        *,
        name: str | None = None,
        description: str | None = None,
        short_description: str | None = None,
        language_code: str = "",
    ) -> None:
        """The bot's shown name and descriptions (those given), for users whose app speaks
        ``language_code`` (a two-letter code), or with ``""`` for everyone without one in their language."""
        language = language_code or None
        async with self.bot(token) as bot:
            if name is not None:
                await bot.set_my_name(name, language_code=language)
            if description is not None:
                await bot.set_my_description(description, language_code=language)
            if short_description is not None:
                await bot.set_my_short_description(short_description, language_code=language)

    async def set_photo(self, token: str, jpeg: bytes) -> None:
        """The bot's profile photo (one for every language)."""
        async with self.bot(token) as bot:
            await bot.set_my_profile_photo(InputProfilePhotoStatic(jpeg))

    async def answer_callback(self, token: str, callback_query_id: str) -> None:
        """Stop the button's spinner; a press older than Telegram keeps is not worth failing over."""
        try:
            async with self.bot(token) as bot:
                await bot.answer_callback_query(callback_query_id)
        except TelegramBadRequest:
            return

    async def edit_text(self, token: str, chat_id: int | str, message_id: int, text: str) -> None:
        """Replace a message's text (and drop its buttons); an unchanged or vanished message is fine."""
        try:
            async with self.bot(token) as bot:
                await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramBadRequest:
            return

    async def download(self, token: str, file_id: str, max_bytes: int) -> bytes:
        """A file someone sent the bot (``getFile``, then the file from the Bot API's file URL); raises
        :class:`FileTooLarge` above ``max_bytes`` and :class:`FileUnavailable` when Telegram cannot serve
        it."""
        try:
            async with self.bot(token) as bot:
                file = await bot.get_file(file_id)
                if file.file_size is not None and file.file_size > max_bytes:
                    raise FileTooLarge()
                data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            if "too big" in str(exc).lower():
                raise FileTooLarge() from None
            raise FileUnavailable(f"Telegram could not serve the file: {exc}") from None
        if len(data) > max_bytes:
            raise FileTooLarge()
        return data

    async def typing(self, token: str, chat_id: int | str) -> None:
        try:
            async with self.bot(token) as bot:
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError:
            return  # only a courtesy

    async def send(self, token: str, chat_id: int | str, text: str, buttons: Buttons | None = None) -> int:
        """Send ``text`` (split when long) as plain text; the number of messages sent."""
        pieces = split_text(text)
        async with self.bot(token) as bot:
            for n, piece in enumerate(pieces):
                markup = buttons if n == len(pieces) - 1 else None
                await self._send_one(bot, chat_id, piece, markup)
        return len(pieces)

    async def _send_one(self, bot: Bot, chat_id: int | str, text: str, markup: Any) -> None:
        for attempt in range(SEND_ATTEMPTS):
            try:
                await bot.send_message(chat_id, text, reply_markup=markup)
                return
            except RetryAfter as exc:
                wait = (
                    exc.retry_after if isinstance(exc.retry_after, int) else exc.retry_after.total_seconds()
                )
                if attempt == SEND_ATTEMPTS - 1 or wait > MAX_RETRY_AFTER_SECONDS:
                    raise
                await asyncio.sleep(float(wait))
            except Forbidden:
                raise BotBlocked() from None
            except TelegramBadRequest:
                raise  # a malformed request or unknown chat: retrying will not help
            except (TimedOut, NetworkError):
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)
