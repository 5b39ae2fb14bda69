"""python-telegram-bot's requests, sent over one aiohttp session that every bot of a process shares.

By default each ``telegram.Bot`` builds two httpx clients with pools of their own. Hutch talks to Telegram
for many bots at once, and a turn sends two requests (typing, then the answer): through httpx each costs
several times the CPU of the same request through aiohttp, and no connection is shared between bots even
though they all reach the same host. :class:`SharedTelegramSession` plugs into python-telegram-bot as its
request object (``BaseRequest``), so the SDK keeps its methods, types, errors and retries-after; only the
HTTP exchange is aiohttp's. The request is form-encoded (multipart when files ride along), as the SDK's own
transport sends it.
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# python-telegram-bot's own defaults for its transport, in seconds.
READ_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 1.0
MEDIA_READ_TIMEOUT = 20.0
MAX_CONNECTIONS = 256  # to the Bot API, for every bot of the process together

log = structlog.get_logger(__name__)


class SharedTelegramSession(BaseRequest):
    """One aiohttp session for every bot. Bots do not own it: their ``shutdown`` leaves it open, and
    :meth:`close` (the gateway's) closes it. It is made on first use, in the event loop that uses it."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def read_timeout(self) -> float:
        return READ_TIMEOUT

    async def initialize(self) -> None:
        self.session()

    async def shutdown(self) -> None:
        """A bot leaving the cache shuts its requests down; the session stays for the other bots."""

    async def close(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to the loop it was made in; a new loop (a test's, a restarted worker's)
            # gets its own.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                headers={"User-Agent": self.USER_AGENT},
            )
            self._loop = loop
        return self._session

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        files = request_data.multipart_data if request_data is not None else {}
        fields = request_data.json_parameters if request_data is not None else {}
        body: aiohttp.FormData | dict[str, str] | None = fields or None
        if files:
            body = aiohttp.FormData(fields)
            for name, (filename, content, mimetype) in files.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        read = _given(read_timeout, MEDIA_READ_TIMEOUT if files else READ_TIMEOUT)
        connect = _given(connect_timeout, CONNECT_TIMEOUT)
        pool = _given(pool_timeout, POOL_TIMEOUT)
        timeout = aiohttp.ClientTimeout(
            sock_read=read,
            sock_connect=connect,
            # aiohttp's ``connect`` covers waiting for a pooled connection and opening one.
            connect=None if connect is None or pool is None else connect + pool,
        )
        try:
            async with self.session().request(method, url, data=body, timeout=timeout) as response:
                answer = await response.read()
        except TimeoutError as exc:
            raise TimedOut() from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        # The Bot API method, never the URL: it holds the bot's token.
        log.info("telegram request", api_method=url.rsplit("/", 1)[-1], status=response.status)
        return response.status, answer


def _given(value: ODVInput[float], default: float) -> float | None:
    return default if isinstance(value, DefaultValue) else value
