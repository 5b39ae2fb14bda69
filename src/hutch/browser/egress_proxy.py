"""The egress guard in front of a browser: a small HTTP proxy each browser context is pointed at.

Chromium sends every request of the context here (pages, redirects, images, scripts, downloads, WebSocket
upgrades; loopback too, see ``BYPASS_NOTHING``), so the same rules as every other tool apply to each one:
the host is resolved and checked as :func:`hutch.core.egress.check_url` does, and the proxy connects to the
very address it checked. A name that answers "public" to the check and "private" afterwards (DNS
rebinding) gets nowhere, because Chromium never resolves names itself while it uses a proxy.

HTTPS goes through ``CONNECT`` tunnels (the TLS session stays between Chromium and the site); plain HTTP is
forwarded one request per connection. A refused destination answers 403 with the reason, and the reason
is kept (:attr:`EgressProxy.refusals`) so the tool can tell the agent why a page did not load.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import structlog

from hutch.core.egress import (
    EgressError,
    EgressPolicy,
    EgressRefused,
    IPAddress,
    Resolver,
    check_destination,
    literal_address,
    system_resolver,
)

log = structlog.get_logger(__name__)

# Chromium leaves loopback out of a proxy unless told; this list makes it proxy everything.
BYPASS_NOTHING = "<-loopback>"
MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 10.0
HOP_BY_HOP = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive"})


@dataclass
class EgressProxy:
    """One context's proxy: listens on loopback, checks each destination, remembers what it refused."""

    policy: EgressPolicy
    resolver: Resolver = system_resolver
    refusals: list[str] = field(default_factory=list)  # newest last, one sentence each
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> str:
        """Start listening; the proxy's URL for the browser."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def refusals_since(self, mark: int) -> list[str]:
        return self.refusals[mark:]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:  # the context closed: its connections end with it
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _checked(self, host: str, port: int) -> IPAddress:
        """The address to connect to for ``host``, once every address it resolves to is acceptable (the
        rules of :func:`hutch.core.egress.check_url`, without building an HTTP client per request)."""
        literal = literal_address(host)
        if literal is not None:
            addresses: Sequence[str] = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError:
                raise EgressError(f"{host} could not be resolved") from None
        return check_destination(host, addresses, self.policy)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_BYTES:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = [*lines[0].split(" "), "", ""][:3]
        if method == "CONNECT":
            host, _, connect_port = target.rpartition(":")
            url = f"https://{host}:{connect_port or 443}/"
        else:
            url = target
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port out of range
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or not port:
            await _answer(writer, 400, "only http and https go through this browser")
            return
        try:
            address = await self._checked(parts.hostname, port)
        except EgressRefused as exc:
            reason = str(exc)
            self.refusals.append(reason)
            log.info("browser request refused", host=parts.hostname, reason=reason)
            await _answer(writer, 403, reason)
            return
        except EgressError as exc:  # a name that does not resolve: the page shows it, nothing to report
            await _answer(writer, 502, str(exc))
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(str(address), port), CONNECT_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"{parts.hostname} could not be reached ({exc.__class__.__name__})")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await writer.drain()
            else:
                upstream_writer.write(_origin_form(method, parts, version, lines[1:]))
            await _pipe_both(reader, writer, upstream_reader, upstream_writer)
        finally:
            upstream_writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await upstream_writer.wait_closed()


def _origin_form(method: str, parts: SplitResult, version: str, header_lines: list[str]) -> bytes:
    """The request as the origin server expects it: its path, the headers without the proxy's own, and one
    request per connection (so a reused connection can never reach another, unchecked, host)."""
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    kept = [line for line in header_lines if line and line.split(":", 1)[0].strip().lower() not in HOP_BY_HOP]
    head = [f"{method} {path} {version or 'HTTP/1.1'}", *kept, "Connection: close", "", ""]
    return "\r\n".join(head).encode("latin-1")


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"The agent's browser did not load this: {reason}".encode()  # seen in screenshots: no product name
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _pipe_both(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until the upstream side ends (the answer is complete), then stop."""
    outbound = asyncio.create_task(_copy(client_reader, upstream_writer))
    try:
        await _copy(upstream_reader, client_writer)
    finally:
        outbound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbound
