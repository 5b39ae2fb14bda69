"""A local Telegram Bot API server speaking the real wire format, for python-telegram-bot and raw HTTP.

Calls are ``POST|GET /bot<token>/<method>`` with JSON, form or query parameters (as Telegram, objects in
form fields are JSON strings); answers are ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error_code": N, "description": ..., "parameters": {"retry_after": N}}``. Several bots can be registered
at once; an unknown token answers 401 ``Unauthorized``. Every call is recorded, so tests assert what a user
would have received (``fake.sent_messages(chat_id)``), and failures can be scripted: a 429 with
``retry_after`` (``rate_limit``), a plain-text 502 (``bad_gateway``), a user who blocked the bot
(``block``), or any other answer (``fail``). Managed bots (Bot API 9.6) work as documented: a manager bot
added with ``can_manage_bots=True`` sends a ``request_managed_bot`` keyboard button, the user's two taps
(``press_managed_bot_button``) create the bot and give the ``managed_bot`` update and the
``managed_bot_created`` message, ``getManagedBotToken`` hands over its token, and ``revoke_token`` /
``remove_bot`` play an owner revoking or deleting it. A bot's menu, name and descriptions are kept for
everyone and per ``language_code`` (a two-letter code; anything else is refused), as Telegram keeps them:
``bot.shown_to("es")`` is what a user whose app speaks Spanish sees.

The ``*_update`` functions build inbound ``Update`` JSON of the real shape for tests to POST to Hutch's
webhook, with ``webhook_headers(secret)`` carrying the secret token header Telegram sends::

    fake = FakeTelegramServer()
    fake.start()
    fake.add_bot("123456:AAE...", "shop_bot")
    bot = telegram.Bot("123456:AAE...", base_url=fake.api_base)
"""

from __future__ import annotations

import html
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_LENGTH = 4096
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # what getFile serves to bots
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# What nginx in front of the Bot API answers when the backend is down: HTML, not JSON.
BAD_GATEWAY_BODY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)
# Form and query values are strings; these stay strings, every other field is JSON-decoded when it parses.
_STRING_FIELDS = frozenset(
    {"text", "url", "secret_token", "parse_mode", "callback_query_id", "action", "inline_message_id"}
    | {"ip_address", "language_code", "caption", "business_connection_id"}
    | {"name", "description", "short_description"}
)
_INT_ID = re.compile(r"-?\d+")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")  # the Bot API's language_code: a two-letter ISO 639-1 code
_DEFAULT_SCOPE = json.dumps({"type": "default"}, sort_keys=True)
_FILES = "__files__"  # where multipart uploads are kept among a call's parameters


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int
    dropped_pending_updates: bool


@dataclass
class FakeBot:
    token: str
    id: int
    username: str
    first_name: str
    webhook: Webhook | None = None
    # keyed by (scope as JSON, language_code), as Telegram keeps one list per scope and language
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    can_manage_bots: bool = False  # bot management enabled in @BotFather's Mini App
    manager_id: int | None = None  # a managed bot: the id of the bot that manages it
    creator_id: int | None = None  # a managed bot: the user who created it
    description: str = ""
    short_description: str = ""
    profile_photo: bytes | None = None
    # Dedicated to the users of one language (by language_code); the fields above are everyone else's.
    names: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    short_descriptions: dict[str, str] = field(default_factory=dict)

    def as_user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def shown_to(self, language_code: str | None) -> ShownProfile:
        """What a user whose app speaks ``language_code`` (as their ``from.language_code``: ``es``,
        ``pt-br``) sees of the bot in a private chat: what is dedicated to their language, else everyone's."""
        code = (language_code or "").partition("-")[0].lower()
        menu = self.commands.get((_DEFAULT_SCOPE, code)) if code else None
        return ShownProfile(
            name=self.names.get(code) or self.first_name,
            description=self.descriptions.get(code) or self.description,
            short_description=self.short_descriptions.get(code) or self.short_description,
            commands=menu if menu is not None else self.commands.get((_DEFAULT_SCOPE, ""), []),
        )


@dataclass(frozen=True)
class ShownProfile:
    name: str
    description: str
    short_description: str
    commands: list[dict[str, str]]


@dataclass
class RecordedCall:
    method: str  # canonical Bot API name, e.g. "sendMessage", whatever case the client used
    token: str
    params: dict[str, Any]
    at: float  # time.time() when the request arrived
    http_method: str
    status: int = 200


@dataclass
class SentMessage:
    token: str
    chat_id: int | str
    message_id: int
    text: str  # as sent, markup included
    plain_text: str  # what the user sees once the parse mode is applied
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    date: int
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    keyboard: dict[str, Any] | None = None  # a reply keyboard (``keyboard``) or its removal, as sent


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    path: str
    data: bytes


@dataclass
class ScriptedFailure:
    method: str
    status: int
    description: str
    times: int
    token: str | None = None
    chat_id: int | str | None = None
    retry_after: int | None = None
    raw_body: str | None = None  # answered verbatim as text/html instead of a JSON error


class TelegramApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> TelegramApiError:
    return TelegramApiError(400, f"Bad Request: {description}")


def _ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status)


Handler = Callable[[FakeBot, dict[str, Any]], Awaitable[Response]]


class FakeTelegramServer(BackgroundServer):
    def __init__(self) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.chats: dict[int | str, dict[str, Any]] = {}
        self.calls: list[RecordedCall] = []
        self.messages: list[SentMessage] = []
        self.failures: list[ScriptedFailure] = []
        self.blocked: set[tuple[str | None, int | str]] = set()
        self.files: dict[str, StoredFile] = {}  # by file_id: what users sent the bots
        self.downloads: list[str] = []  # file paths downloaded, in order
        self._next_message_id: dict[tuple[str, int | str], int] = {}
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getFile": self._get_file,
            "getManagedBotToken": self._get_managed_bot_token,
            "replaceManagedBotToken": self._replace_managed_bot_token,
            "setMyName": self._set_my_name,
            "getMyName": self._get_my_name,
            "setMyDescription": self._set_my_description,
            "getMyDescription": self._get_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyShortDescription": self._get_my_short_description,
            "setMyProfilePhoto": self._set_my_profile_photo,
        }
        # Telegram matches method names case-insensitively.
        self._handlers = {name.lower(): (name, handler) for name, handler in handlers.items()}
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
            ]
        )
        super().__init__(app)

    # --- test API ---------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What ``telegram.Bot(token, base_url=...)`` wants: the token is appended to it."""
        return f"{self.base_url}/bot"

    def reset(self) -> None:
        self.bots.clear()
        self.chats.clear()
        self.calls.clear()
        self.messages.clear()
        self.failures.clear()
        self.blocked.clear()
        self._next_message_id.clear()
        self.files.clear()
        self.downloads.clear()

    def add_file(self, data: bytes, *, prefix: str = "BQACAgIAAxkBAAI", folder: str = "documents") -> str:
        """A file a user sent (for ``getFile`` and the download URL); its ``file_id``."""
        file_id, unique = _file_id(prefix)
        extension = {"photos": ".jpg", "voice": ".oga", "music": ".mp3"}.get(folder, ".pdf")
        path = f"{folder}/file_{len(self.files)}{extension}"
        self.files[file_id] = StoredFile(file_id, unique, path, data)
        return file_id

    def add_bot(
        self, token: str, username: str, first_name: str | None = None, *, can_manage_bots: bool = False
    ) -> FakeBot:
        bot_id, _, _ = token.partition(":")
        bot = FakeBot(
            token=token,
            id=int(bot_id) if bot_id.isdigit() else abs(hash(token)) % 10**10,
            username=username,
            first_name=first_name or username.removesuffix("_bot").removesuffix("bot").title() or username,
            can_manage_bots=can_manage_bots,
        )
        self.bots[token] = bot
        return bot

    def bot_by_id(self, bot_id: int) -> FakeBot | None:
        return next((b for b in self.bots.values() if b.id == bot_id), None)

    def press_managed_bot_button(
        self,
        manager_token: str,
        user: Sender,
        *,
        name: str | None = None,
        username: str | None = None,
    ) -> list[dict[str, Any]]:
        """The user presses the ``request_managed_bot`` button of the manager bot's latest keyboard in
        their chat and confirms Telegram's creation screen (``name``/``username`` as they edited them, or
        the suggestions). The new bot exists at once; the updates Telegram then sends the manager's
        webhook are returned, in order: ``managed_bot`` (only when its webhook asks for that kind) and the
        ``managed_bot_created`` service message in the chat."""
        manager = self.bots[manager_token]
        if not manager.can_manage_bots:
            raise AssertionError(f"@{manager.username} cannot manage bots: Telegram shows no creation screen")
        button = self._managed_bot_button(manager_token, user.id)
        if button is None:
            raise AssertionError(f"@{manager.username} showed {user.id} no request_managed_bot button")
        ask = button["request_managed_bot"]
        wanted = username or ask.get("suggested_username") or f"new_{secrets.randbelow(10**6)}_bot"
        while any(b.username.lower() == wanted.lower() for b in self.bots.values()):
            wanted = f"{wanted.removesuffix('_bot').removesuffix('bot')[:20]}_{secrets.randbelow(10**4)}_bot"
        bot = self.add_bot(new_bot_token(), wanted, name or ask.get("suggested_name") or wanted)
        bot.manager_id, bot.creator_id = manager.id, user.id
        updates = []
        webhook = manager.webhook
        if webhook is None or webhook.allowed_updates is None or "managed_bot" in webhook.allowed_updates:
            updates.append(_update("managed_bot", {"user": user.as_user(), "bot": bot.as_user()}, None))
        created = {"bot": bot.as_user()}
        updates.append(
            _update("message", _message(user, None, None, None, managed_bot_created=created), None)
        )
        return updates

    def _managed_bot_button(self, token: str, chat_id: int) -> dict[str, Any] | None:
        for message in reversed(self.sent_messages(chat_id, token)):
            if message.keyboard is None:
                continue
            for row in message.keyboard.get("keyboard", []):
                for button in row:
                    if isinstance(button, dict) and "request_managed_bot" in button:
                        return button
            return None  # a later keyboard replaced the one with the button
        return None

    def revoke_token(self, token: str) -> str:
        """The owner revokes the bot's token in @BotFather: the old one answers 401; the new token."""
        bot = self.bots.pop(token)
        bot.token = new_bot_token(bot.id)
        self.bots[bot.token] = bot
        return bot.token

    def remove_bot(self, token: str) -> None:
        """Forget a bot, as when its token is revoked in BotFather: its calls then answer 401."""
        self.bots.pop(token, None)

    def add_chat(
        self,
        chat_id: int,
        *,
        type: str = "private",  # Telegram's field name
        first_name: str | None = None,
        username: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": type}
        if type == "private":
            chat["first_name"] = first_name or "User"
        else:
            chat["title"] = title or "Group"
        if username:
            chat["username"] = username
        self.chats[chat_id] = chat
        return chat

    def block(self, chat_id: int | str, token: str | None = None) -> None:
        """The user of ``chat_id`` blocks the bot (every bot when ``token`` is None): calls answer 403."""
        self.blocked.add((token, _chat_key(chat_id)))

    def unblock(self, chat_id: int | str, token: str | None = None) -> None:
        self.blocked.discard((token, _chat_key(chat_id)))

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        times: int = 1,
        token: str | None = None,
        chat_id: int | str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``times`` matching calls of ``method`` with this error."""
        self.failures.append(
            ScriptedFailure(
                method.lower(),
                status,
                description,
                times,
                token,
                None if chat_id is None else _chat_key(chat_id),
                retry_after,
            )
        )

    def rate_limit(
        self, method: str = "sendMessage", retry_after: int = 3, *, times: int = 1, token: str | None = None
    ) -> None:
        description = f"Too Many Requests: retry after {retry_after}"
        self.fail(method, 429, description, times=times, token=token, retry_after=retry_after)

    def bad_gateway(self, method: str = "sendMessage", *, times: int = 1, token: str | None = None) -> None:
        self.failures.append(
            ScriptedFailure(method.lower(), 502, "Bad Gateway", times, token, raw_body=BAD_GATEWAY_BODY)
        )

    def recorded(self, method: str | None = None, token: str | None = None) -> list[RecordedCall]:
        return [
            call
            for call in self.calls
            if (method is None or call.method.lower() == method.lower())
            and (token is None or call.token == token)
        ]

    def sent_messages(self, chat_id: int | str | None = None, token: str | None = None) -> list[SentMessage]:
        key = None if chat_id is None else _chat_key(chat_id)
        return [
            message
            for message in self.messages
            if (key is None or message.chat_id == key) and (token is None or message.token == token)
        ]

    def sent_texts(self, chat_id: int | str | None = None, token: str | None = None) -> list[str]:
        """The texts a user would read, in order, after edits and parse modes are applied."""
        return [message.plain_text for message in self.sent_messages(chat_id, token)]

    def chat_actions(self, chat_id: int | str | None = None, token: str | None = None) -> list[str]:
        key = None if chat_id is None else _chat_key(chat_id)
        return [
            call.params["action"]
            for call in self.recorded("sendChatAction", token)
            if call.status == 200 and (key is None or _chat_key(call.params["chat_id"]) == key)
        ]

    def webhook(self, token: str) -> Webhook | None:
        return self.bots[token].webhook

    # --- transport --------------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        token = request.path_params["token"]
        method_name = request.path_params["method"]
        params = await _read_params(request)
        name, handler = self._handlers.get(method_name.lower(), (method_name, None))
        call = RecordedCall(name, token, params, time.time(), request.method)
        self.calls.append(call)
        response = await self._answer(token, name, handler, params)
        call.status = response.status_code
        return response

    async def _answer(
        self, token: str, name: str, handler: Handler | None, params: dict[str, Any]
    ) -> Response:
        bot = self.bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        if handler is None:
            return _error(404, "Not Found")
        failure = self._take_failure(name, token, params.get("chat_id"))
        if failure is not None:
            if failure.raw_body is not None:
                return Response(failure.raw_body, failure.status, media_type="text/html")
            return _error(failure.status, failure.description, failure.retry_after)
        chat_id = params.get("chat_id")
        if chat_id is not None and (
            (None, _chat_key(chat_id)) in self.blocked or (token, _chat_key(chat_id)) in self.blocked
        ):
            return _error(403, "Forbidden: bot was blocked by the user")
        try:
            return await handler(bot, params)
        except TelegramApiError as exc:
            return _error(exc.status, exc.description, exc.retry_after)

    def _take_failure(self, name: str, token: str, chat_id: Any) -> ScriptedFailure | None:
        for failure in self.failures:
            if (
                failure.times > 0
                and failure.method == name.lower()
                and failure.token in (None, token)
                and (
                    failure.chat_id is None or (chat_id is not None and failure.chat_id == _chat_key(chat_id))
                )
            ):
                failure.times -= 1
                return failure
        return None

    # --- methods ----------------------------------------------------------------------------------

    async def _get_me(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok(
            bot.as_user()
            | {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
                "can_manage_bots": bot.can_manage_bots,
            }
        )

    async def _set_webhook(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(bot, params)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in (80, 88, 443, 8443):
            raise _bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
        ):
            raise _bad_request("can't parse allowed updates JSON object")
        max_connections = int(params.get("max_connections") or 40)
        if not 1 <= max_connections <= 100:
            raise _bad_request("bad webhook: invalid max_connections")
        webhook = Webhook(url, secret, allowed, max_connections, bool(params.get("drop_pending_updates")))
        already = bot.webhook is not None and bot.webhook.url == url
        bot.webhook = webhook
        return _ok(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        existed = bot.webhook is not None
        bot.webhook = None
        return _ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if bot.webhook is not None:
            info |= {"url": bot.webhook.url, "max_connections": bot.webhook.max_connections}
            if bot.webhook.allowed_updates is not None:
                info["allowed_updates"] = bot.webhook.allowed_updates
        return _ok(info)

    async def _send_message(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        chat_id = self._require_chat(params)
        text, parse_mode = str(params.get("text") or ""), params.get("parse_mode")
        plain, entities = _render(text, parse_mode, params.get("entities"))
        markup = _check_reply_markup(params.get("reply_markup"))
        key = (bot.token, chat_id)
        message_id = self._next_message_id.get(key, 0) + 1
        self._next_message_id[key] = message_id
        inline = markup if markup and "inline_keyboard" in markup else None
        sent = SentMessage(
            bot.token, chat_id, message_id, text, plain, parse_mode, entities, inline, int(time.time())
        )
        if markup is not None and ("keyboard" in markup or "remove_keyboard" in markup):
            if _has_managed_bot_button(markup) and not (isinstance(chat_id, int) and chat_id > 0):
                raise _bad_request("KEYBOARD_BUTTON_REQUEST_MANAGED_BOT is allowed only in private chats")
            sent.keyboard = markup
        self.messages.append(sent)
        return _ok(self._message_json(bot, sent))

    async def _send_chat_action(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        self._require_chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return _ok(True)

    async def _edit_message_text(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        if params.get("inline_message_id"):
            _render(str(params.get("text") or ""), params.get("parse_mode"), params.get("entities"))
            return _ok(True)
        chat_id = self._require_chat(params)
        message = next(
            (
                m
                for m in self.messages
                if m.token == bot.token and m.chat_id == chat_id and m.message_id == params.get("message_id")
            ),
            None,
        )
        if message is None:
            raise _bad_request("message to edit not found")
        text, parse_mode = str(params.get("text") or ""), params.get("parse_mode")
        plain, entities = _render(text, parse_mode, params.get("entities"))
        markup = _check_reply_markup(params.get("reply_markup"))
        if plain == message.plain_text and entities == message.entities and markup == message.reply_markup:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        message.edits.append(message.text)
        message.text, message.plain_text, message.parse_mode = text, plain, parse_mode
        message.entities, message.reply_markup = entities, markup
        return _ok(self._message_json(bot, message) | {"edit_date": int(time.time())})

    async def _answer_callback_query(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        if not params.get("callback_query_id"):
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        return _ok(True)

    async def _set_my_commands(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", str(command.get("command", ""))
            ):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[_commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return _ok(True)

    async def _get_my_commands(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok(bot.commands.get(_commands_key(params), []))

    async def _delete_my_commands(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        bot.commands.pop(_commands_key(params), None)
        return _ok(True)

    def _managed(self, bot: FakeBot, params: dict[str, Any]) -> FakeBot:
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad_request("invalid user_id specified")
        managed = self.bot_by_id(user_id)
        if managed is None or managed.manager_id != bot.id:
            raise _bad_request("BOT_NOT_MANAGED")  # deleted by its owner, or never managed by this bot
        return managed

    async def _get_managed_bot_token(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok(self._managed(bot, params).token)

    async def _replace_managed_bot_token(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok(self.revoke_token(self._managed(bot, params).token))

    # Each text is everyone's without a language_code, else dedicated to that language (an empty text
    # removes the dedicated one); the getters answer what a user of the language sees.

    async def _set_my_name(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        name, code = str(params.get("name") or ""), _language_code(params)
        if len(name) > 64:
            raise _bad_request("BOT_TITLE_INVALID")
        if code:
            _dedicate(bot.names, code, name)
        else:
            bot.first_name = name or bot.username
        return _ok(True)

    async def _get_my_name(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok({"name": bot.shown_to(_language_code(params)).name})

    async def _set_my_description(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        description, code = str(params.get("description") or ""), _language_code(params)
        if len(description) > 512:
            raise _bad_request("BOT_DESCRIPTION_INVALID")
        if code:
            _dedicate(bot.descriptions, code, description)
        else:
            bot.description = description
        return _ok(True)

    async def _get_my_description(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok({"description": bot.shown_to(_language_code(params)).description})

    async def _set_my_short_description(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        short, code = str(params.get("short_description") or ""), _language_code(params)
        if len(short) > 120:
            raise _bad_request("BOT_ABOUT_INVALID")
        if code:
            _dedicate(bot.short_descriptions, code, short)
        else:
            bot.short_description = short
        return _ok(True)

    async def _get_my_short_description(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        return _ok({"short_description": bot.shown_to(_language_code(params)).short_description})

    async def _set_my_profile_photo(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        photo = params.get("photo")
        files: dict[str, bytes] = params.get(_FILES, {})
        if not isinstance(photo, dict) or photo.get("type") != "static":
            raise _bad_request("can't parse InputProfilePhoto JSON object")
        attached = str(photo.get("photo") or "").removeprefix("attach://")
        data = files.get(attached)
        if data is None:
            raise _bad_request("PHOTO_INVALID")  # only an uploaded file makes a profile photo
        if not data.startswith(b"\xff\xd8"):
            raise _bad_request("IMAGE_PROCESS_FAILED")  # a static profile photo is a JPEG
        bot.profile_photo = data
        return _ok(True)

    # --- shapes -----------------------------------------------------------------------------------

    async def _get_file(self, bot: FakeBot, params: dict[str, Any]) -> Response:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad_request("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return _ok(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data),
                "file_path": stored.path,
            }
        )

    async def _download(self, request: Request) -> Response:
        # https://api.telegram.org/file/bot<token>/<file_path>, as getFile's documentation says.
        if request.path_params["token"] not in self.bots:
            return _error(401, "Unauthorized")
        path = request.path_params["path"]
        for stored in self.files.values():
            if stored.path == path:
                self.downloads.append(path)
                return Response(stored.data, media_type="application/octet-stream")
        return _error(404, "Not Found")

    def _require_chat(self, params: dict[str, Any]) -> int | str:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        key = _chat_key(chat_id)
        if isinstance(key, str) and not key.startswith("@"):
            raise _bad_request("chat not found")
        return key

    def _chat_json(self, chat_id: int | str) -> dict[str, Any]:
        if chat_id in self.chats:
            return self.chats[chat_id]
        if isinstance(chat_id, str):  # "@channelusername"
            return {"id": -1001000000000, "title": chat_id[1:], "username": chat_id[1:], "type": "channel"}
        if chat_id > 0:
            return {"id": chat_id, "first_name": "User", "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "title": "Group", "type": kind}

    def _message_json(self, bot: FakeBot, message: SentMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "from": bot.as_user(),
            "chat": self._chat_json(message.chat_id),
            "date": message.date,
            "text": message.plain_text,
        }
        if message.entities:
            body["entities"] = message.entities
        if message.reply_markup:
            body["reply_markup"] = message.reply_markup
        return body


async def _read_params(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    params: dict[str, Any] = {}
    if "application/json" in content_type:
        body = await request.body()
        parsed = json.loads(body) if body else {}
        params = dict(parsed) if isinstance(parsed, dict) else {}
    else:
        raw: dict[str, str] = dict(request.query_params)
        if request.method == "POST" and ("form" in content_type):
            form = await request.form()
            raw |= {key: value for key, value in form.items() if isinstance(value, str)}
            files = {key: await value.read() for key, value in form.items() if not isinstance(value, str)}
            if files:  # uploads, named by the "attach://<name>" their JSON field carries
                params[_FILES] = files
        for key, value in raw.items():
            params[key] = value if key in _STRING_FIELDS else _decode(value)
    if "chat_id" in params:
        params["chat_id"] = _chat_key(params["chat_id"])
    return params


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _chat_key(chat_id: Any) -> int | str:
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id).strip()
    return int(text) if _INT_ID.fullmatch(text) else text


def _language_code(params: dict[str, Any]) -> str:
    code = str(params.get("language_code") or "")
    if code and not _LANGUAGE_CODE.fullmatch(code):
        raise _bad_request("LANG_CODE_INVALID")
    return code


def _dedicate(texts: dict[str, str], code: str, text: str) -> None:
    if text:
        texts[code] = text
    else:
        texts.pop(code, None)


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), _language_code(params)


def _has_managed_bot_button(markup: dict[str, Any]) -> bool:
    rows = markup.get("keyboard") or []
    return any(isinstance(b, dict) and "request_managed_bot" in b for row in rows for b in row)


def _check_reply_keyboard(markup: dict[str, Any]) -> None:
    rows = markup["keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request("can't parse keyboard button: KeyboardButton must be an Object")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad_request("can't parse keyboard button: Text must be non-empty")
            ask = button.get("request_managed_bot")
            if ask is None:
                continue
            request_id = ask.get("request_id") if isinstance(ask, dict) else None
            if not isinstance(request_id, int) or not -(2**31) <= request_id < 2**31:
                raise _bad_request("can't parse KeyboardButtonRequestManagedBot: request_id must be Int32")
            username = ask.get("suggested_username")
            if username is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt]", username):
                raise _bad_request("BOT_USERNAME_INVALID")
            if len(str(ask.get("suggested_name") or "")) > 64:
                raise _bad_request("BOT_TITLE_INVALID")


def _check_reply_markup(markup: Any) -> dict[str, Any] | None:
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "keyboard" in markup:
        _check_reply_keyboard(markup)
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
                if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                    raise _bad_request("BUTTON_DATA_INVALID")
                if (
                    len(
                        {"url", "callback_data", "switch_inline_query", "web_app", "login_url", "pay"}
                        & set(button)
                    )
                    != 1
                ):
                    raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    return markup


def _render(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Apply the parse mode as Telegram does; the plain text is what the user reads."""
    if parse_mode:
        mode = str(parse_mode).lower()
        parser = {"html": _parse_html, "markdownv2": _parse_markdown_v2, "markdown": _parse_markdown}.get(
            mode
        )
        if parser is None:
            raise _bad_request(f"unsupported parse_mode {parse_mode}")
        try:
            plain, parsed = parser(text)
        except _EntityError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from None
    else:
        plain, parsed = text, list(entities) if isinstance(entities, list) else []
    if not plain.strip():
        raise _bad_request("message text is empty")
    if len(plain) > MAX_MESSAGE_LENGTH:
        raise _bad_request("message is too long")
    return plain, parsed


# --- parse modes ----------------------------------------------------------------------------------
# Enough of Telegram's parsers to reject clearly broken markup with its error texts and to report the
# entities a client sees (offsets in UTF-16 code units, as the Bot API counts them).


class _EntityError(Exception):
    pass


class _PlainText:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += len(text.encode("utf-16-le")) // 2

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            extra = {k: v for k, v in extra.items() if v is not None}
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start} | extra)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ESCAPES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ATTR = re.compile(r"""([a-zA-Z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+)))?""")


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _PlainText()
    stack: list[tuple[str, int, dict[str, str]]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end == -1:
                raise _EntityError(f"Can't find end of the tag at byte offset {_byte_offset(text, i)}")
            tag = text[i + 1 : end].strip()
            if tag.startswith("/"):
                name = tag[1:].strip().lower()
                if not stack:
                    raise _EntityError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
                open_name, start, attrs = stack.pop()
                if name != open_name:
                    raise _EntityError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{open_name}>", found "</{name}>"'
                    )
                _close_html_entity(out, stack, open_name, start, attrs)
            else:
                name, _, rest = tag.partition(" ")
                name = name.lower()
                attrs = {
                    m[1].lower(): html.unescape(m[2] or m[3] or m[4] or "") for m in _HTML_ATTR.finditer(rest)
                }
                if name not in _HTML_TAGS or (name == "span" and attrs.get("class") != "tg-spoiler"):
                    raise _EntityError(
                        f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
                    )
                stack.append((name, out.pos, attrs))
            i = end + 1
        elif char == "&":
            semi = text.find(";", i, i + 10)
            name = text[i + 1 : semi] if semi != -1 else ""
            if name in _HTML_ESCAPES:
                out.add(_HTML_ESCAPES[name])
            elif re.fullmatch(r"#\d{1,7}|#x[0-9a-fA-F]{1,6}", name):
                out.add(chr(int(name[2:], 16) if name[1] == "x" else int(name[1:])))
            else:
                out.add("&")  # Telegram keeps an unknown entity as text
                semi = i
            i = semi + 1
        else:
            out.add(char)
            i += 1
    if stack:
        raise _EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html_entity(
    out: _PlainText,
    stack: list[tuple[str, int, dict[str, str]]],
    name: str,
    start: int,
    attrs: dict[str, str],
) -> None:
    kind = _HTML_TAGS[name]
    language = attrs.get("class", "").removeprefix("language-") or None
    if name == "code" and stack and stack[-1][0] == "pre" and language:
        stack[-1][2]["language"] = language  # <pre><code class="language-x"> is one pre entity
        return
    if kind == "text_link":
        if attrs.get("href"):
            out.entity(kind, start, url=attrs["href"])
    elif kind == "pre":
        out.entity(kind, start, language=attrs.get("language"))
    elif kind == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else kind, start)
    elif kind == "custom_emoji":
        out.entity(kind, start, custom_emoji_id=attrs.get("emoji-id"))
    else:
        out.entity(kind, start)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_KINDS = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "[": ("text_link", "TextUrl"),
}


def _find_unescaped(text: str, needle: str, start: int) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _PlainText()
    stack: list[tuple[str, int, int]] = []  # marker, start in UTF-16 units, byte offset
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text) or not 1 <= ord(text[i + 1]) <= 126:
                raise _EntityError("Character '\\' is reserved and must be escaped with the preceding '\\'")
            out.add(text[i + 1])
            i += 2
            continue
        if char == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = _find_unescaped(text, fence, i + len(fence))
            if end == -1:
                kind = "Pre" if fence == "```" else "Code"
                raise _EntityError(f"Can't find end of {kind} entity at byte offset {_byte_offset(text, i)}")
            body, language = text[i + len(fence) : end], None
            if fence == "```":
                first, newline, rest = body.partition("\n")
                if newline and first and not any(c.isspace() for c in first):
                    body, language = rest, first
            start = out.pos
            out.add(_unescape(body))
            out.entity("pre" if fence == "```" else "code", start, language=language)
            i = end + len(fence)
            continue
        marker = next((m for m in ("__", "||") if text.startswith(m, i)), char if char in "*_~[" else None)
        if marker is not None:
            if marker != "[" and stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                out.entity(_MDV2_KINDS[marker][0], start)
            else:
                stack.append((marker, out.pos, _byte_offset(text, i)))
            i += len(marker)
            continue
        if char == "]" and stack and stack[-1][0] == "[" and text.startswith("(", i + 1):
            end = _find_unescaped(text, ")", i + 2)
            if end == -1:
                raise _EntityError(f"Can't find end of a URL at byte offset {_byte_offset(text, i + 1)}")
            _, start, _ = stack.pop()
            out.entity("text_link", start, url=_unescape(text[i + 2 : end]))
            i = end + 1
            continue
        if char == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1  # a blockquote line
            continue
        if char in _MDV2_RESERVED:
            raise _EntityError(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        out.add(char)
        i += 1
    if stack:
        marker, _, offset = stack[-1]
        raise _EntityError(f"Can't find end of {_MDV2_KINDS[marker][1]} entity at byte offset {offset}")
    return out.result()


def _parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: no nesting, only ``*_`[`` are special and escapable."""
    out = _PlainText()
    kinds = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "*_`[":
            out.add(text[i + 1])
            i += 2
            continue
        marker = "```" if text.startswith("```", i) else char if char in "*_`" else None
        if marker is not None:
            end = text.find(marker, i + len(marker))
            if end == -1:
                raise _EntityError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            start = out.pos
            out.add(text[i + len(marker) : end])
            out.entity(kinds[marker], start)
            i = end + len(marker)
            continue
        link = re.match(r"\[([^\]]*)\]\(([^)]*)\)", text[i:])
        if link:
            start = out.pos
            out.add(link[1])
            out.entity("text_link", start, url=link[2])
            i += link.end()
            continue
        out.add(char)
        i += 1
    return out.result()


# --- inbound updates ------------------------------------------------------------------------------
# Plain functions producing the JSON Telegram POSTs to a webhook, for tests to send to Hutch.

_update_ids = itertools.count(700_000_000)
_inbound_message_ids = itertools.count(1000)


@dataclass(frozen=True)
class Sender:
    """A Telegram user writing to a bot; their private chat has the same id."""

    id: int = 5_550_001
    first_name: str = "Ada"
    last_name: str | None = "Lovelace"
    username: str | None = "ada_l"
    language_code: str | None = "en"

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                user[key] = getattr(self, key)
        return user

    def private_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "first_name": self.first_name, "type": "private"}
        if self.last_name is not None:
            chat["last_name"] = self.last_name
        if self.username is not None:
            chat["username"] = self.username
        return chat


def group_chat(chat_id: int = -1001234567890, title: str = "Team chat") -> dict[str, Any]:
    return {
        "id": chat_id,
        "title": title,
        "type": "supergroup" if str(chat_id).startswith("-100") else "group",
    }


def webhook_headers(secret_token: str | None) -> dict[str, str]:
    """The headers Telegram sends with each webhook POST."""
    headers = {"Content-Type": "application/json"}
    if secret_token is not None:
        headers[SECRET_TOKEN_HEADER] = secret_token
    return headers


def _file_id(prefix: str) -> tuple[str, str]:
    """A (file_id, file_unique_id) pair of the usual length and alphabet."""
    return prefix + secrets.token_urlsafe(48)[:64], "AQAD" + secrets.token_urlsafe(12)[:12]


def _message(
    sender: Sender, chat: dict[str, Any] | None, message_id: int | None, date: int | None, **content: Any
) -> dict[str, Any]:
    return {
        "message_id": message_id if message_id is not None else next(_inbound_message_ids),
        "from": sender.as_user(),
        "chat": chat if chat is not None else sender.private_chat(),
        "date": date if date is not None else int(time.time()),
        **content,
    }


def _update(kind: str, payload: dict[str, Any], update_id: int | None) -> dict[str, Any]:
    return {"update_id": update_id if update_id is not None else next(_update_ids), kind: payload}


def _text_content(text: str) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if command:
        content["entities"] = [{"offset": 0, "length": len(command[0]), "type": "bot_command"}]
    return content


def text_update(
    text: str,
    *,
    sender: Sender = Sender(),  # frozen, so one shared default is safe
    chat: dict[str, Any] | None = None,
    message_id: int | None = None,
    date: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """A text message; a leading ``/command`` gets its ``bot_command`` entity as Telegram adds it."""
    return _update("message", _message(sender, chat, message_id, date, **_text_content(text)), update_id)


def start_update(
    payload: str | None = None,
    *,
    sender: Sender = Sender(),
    message_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """``/start`` as sent by a ``t.me/<bot>?start=<payload>`` deep link."""
    text = "/start" if payload is None else f"/start {payload}"
    return text_update(text, sender=sender, message_id=message_id, update_id=update_id)


def edited_text_update(
    text: str,
    *,
    message_id: int,
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    date: int | None = None,
    edit_date: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    now = int(time.time())
    message = _message(
        sender, chat, message_id, date if date is not None else now - 60, **_text_content(text)
    )
    message["edit_date"] = edit_date if edit_date is not None else now
    return _update("edited_message", message, update_id)


def photo_update(
    *,
    file_id: str | None = None,
    file_size: int | None = None,
    caption: str | None = None,
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    message_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """A photo: Telegram sends every size it made, smallest first (``file_id``: the largest's)."""
    served = file_id
    _, unique = _file_id("")
    sizes = []
    for width, height, size in (
        (90, 67, 1_412),
        (320, 240, 18_220),
        (800, 600, 71_305),
        (1280, 960, 130_870),
    ):
        file_id, _ = _file_id("AgACAgIAAxkBAAI")
        sizes.append(
            {
                "file_id": file_id,
                "file_unique_id": f"{unique}{width}",
                "file_size": size,
                "width": width,
                "height": height,
            }
        )
    if served is not None:  # the largest size is a file the fake serves
        sizes[-1]["file_id"] = served
        if file_size is not None:
            sizes[-1]["file_size"] = file_size
    content: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        content["caption"] = caption
    return _update("message", _message(sender, chat, message_id, None, **content), update_id)


def voice_update(
    *,
    file_id: str | None = None,
    file_size: int | None = None,
    duration: int = 4,
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    message_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    made, unique = _file_id("AwACAgIAAxkBAAI")
    voice = {
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_id": file_id or made,
        "file_unique_id": unique,
        "file_size": file_size if file_size is not None else 4_000 * duration,
    }
    return _update("message", _message(sender, chat, message_id, None, voice=voice), update_id)


def document_update(
    *,
    file_id: str,
    file_name: str,
    mime_type: str,
    file_size: int,
    caption: str | None = None,
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    message_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """A file sent as a document (a PDF, a text file, anything), with its name and type."""
    _, unique = _file_id("")
    document = {
        "file_name": file_name,
        "mime_type": mime_type,
        "file_id": file_id,
        "file_unique_id": unique,
        "file_size": file_size,
    }
    content: dict[str, Any] = {"document": document}
    if caption is not None:
        content["caption"] = caption
    return _update("message", _message(sender, chat, message_id, None, **content), update_id)


def sticker_update(
    *,
    emoji: str = "\N{THUMBS UP SIGN}",
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    message_id: int | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    file_id, unique = _file_id("CAACAgIAAxkBAAI")
    thumb_id, thumb_unique = _file_id("AAMCAgADGQEAAg")
    sticker = {
        "width": 512,
        "height": 512,
        "emoji": emoji,
        "set_name": "HotCherry",
        "is_animated": False,
        "is_video": False,
        "type": "regular",
        "thumbnail": {
            "file_id": thumb_id,
            "file_unique_id": thumb_unique,
            "file_size": 5_416,
            "width": 128,
            "height": 128,
        },
        "file_id": file_id,
        "file_unique_id": unique,
        "file_size": 28_440,
    }
    return _update("message", _message(sender, chat, message_id, None, sticker=sticker), update_id)


def callback_query_update(
    data: str,
    *,
    message_id: int,
    bot_id: int,
    bot_username: str,
    message_text: str = "Choose an option",
    sender: Sender = Sender(),
    chat: dict[str, Any] | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """A press on an inline keyboard button under the bot's message ``message_id``."""
    bot_user = {"id": bot_id, "is_bot": True, "first_name": bot_username, "username": bot_username}
    message = {
        "message_id": message_id,
        "from": bot_user,
        "chat": chat if chat is not None else sender.private_chat(),
        "date": int(time.time()) - 30,
        "text": message_text,
    }
    query = {
        "id": str(secrets.randbits(63)),
        "from": sender.as_user(),
        "message": message,
        "chat_instance": str(-secrets.randbits(62)),
        "data": data,
    }
    return _update("callback_query", query, update_id)


def new_bot_token(bot_id: int | None = None) -> str:
    """A token of the shape BotFather hands out: ``<bot id>:<35 characters>``."""
    bot_id = bot_id if bot_id is not None else 7_000_000_000 + secrets.randbelow(10**9)
    return f"{bot_id}:AA" + secrets.token_urlsafe(32)[:33]


def managed_bot_update(user: Sender, bot: Any, *, update_id: int | None = None) -> dict[str, Any]:
    """A ``managed_bot`` update: ``user`` created (or changed) ``bot`` (a ``FakeBot``), managed by the bot
    the update goes to."""
    return _update("managed_bot", {"user": user.as_user(), "bot": bot.as_user()}, update_id)
