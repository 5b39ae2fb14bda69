"""The MCP client: lists a server's tools and calls them, through the egress guard, with held sessions.

Opening an MCP session costs tens of milliseconds (a handshake, sometimes a probe, a session to end), far
more than a tool call on a session already open (about 2 ms on loopback), so :class:`McpClients` keeps one
session per server and endpoint configuration alive across turns, in a task of its own (the SDK's session
lives in a task group that must be entered and left by one task). A session idle for
``IDLE_SECONDS`` is closed; a session that fails is dropped and the next call opens another. Every
connection goes through :func:`hutch.core.egress.pinned_client_factory`: the host is resolved and checked
once per session, and its clients connect only to the address that was checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, EmbeddedResource, ImageContent, TextContent

from hutch.core.egress import EgressError, EgressPolicy, PinnedClientFactory, pinned_client_factory
from hutch.integrations.models import McpTransport

IDLE_SECONDS = 300.0  # a held session unused this long is closed
LIST_PAGES = 10  # at most this many pages of tools are listed (servers with more are unusual)


class McpFailed(Exception):
    """An MCP server could not be reached or answered badly; the message is one sentence for people."""


@dataclass(frozen=True)
class McpEndpoint:
    """Where a server is and how to reach it, decrypted for the call (never logged)."""

    server_id: str
    url: str
    transport: McpTransport
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """Held sessions are keyed by everything that makes one: new headers open a new session."""
        material = json.dumps([self.server_id, self.url, self.transport, self.headers])
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolAnswer:
    text: str
    is_error: bool


class McpGateway(Protocol):
    async def list_tools(
        self, endpoint: McpEndpoint, policy: EgressPolicy, *, time_limit: float
    ) -> list[ListedTool]: ...

    async def call_tool(
        self,
        endpoint: McpEndpoint,
        name: str,
        arguments: dict[str, Any],
        policy: EgressPolicy,
        *,
        time_limit: float,
    ) -> ToolAnswer: ...

    async def close(self) -> None: ...


def _transport(
    endpoint: McpEndpoint, factory: PinnedClientFactory, http: httpx2.AsyncClient | None
) -> AbstractAsyncContextManager[Any]:
    if endpoint.transport is McpTransport.SSE:
        return sse_client(endpoint.url, headers=dict(endpoint.headers), httpx_client_factory=factory)
    assert http is not None
    return streamable_http_client(endpoint.url, http_client=http)


@dataclass
class _HeldSession:
    """One open session, owned by its own task; calls may come from any task on the same loop."""

    endpoint: McpEndpoint
    policy: EgressPolicy
    loop: asyncio.AbstractEventLoop
    client: Client | None = None
    error: BaseException | None = None
    used_at: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"mcp session {self.endpoint.server_id}")

    async def _run(self) -> None:
        try:
            async with _open(self.endpoint, self.policy) as client:
                self.client = client
                self.ready.set()
                await self.stop.wait()
        except Exception as exc:  # noqa: BLE001 - whatever ended the session, its callers hear it
            self.error = exc
        finally:
            self.client = None
            self.ready.set()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None and not self.task.done():
            try:
                await asyncio.wait_for(self.task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()


class _open:
    """A connected :class:`mcp.Client` for ``endpoint``, its connections pinned by the egress guard."""

    def __init__(self, endpoint: McpEndpoint, policy: EgressPolicy) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self._http: httpx2.AsyncClient | None = None
        self._client: Client | None = None

    async def __aenter__(self) -> Client:
        factory = await pinned_client_factory(self.endpoint.url, self.policy)
        if self.endpoint.transport is McpTransport.STREAMABLE_HTTP:
            self._http = factory(headers=dict(self.endpoint.headers))
        self._client = Client(_transport(self.endpoint, factory, self._http), cache=None)
        try:
            return await self._client.__aenter__()
        except BaseException:
            if self._http is not None:
                await self._http.aclose()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._client is not None:
                await self._client.__aexit__(None, None, None)
        finally:
            if self._http is not None:
                await self._http.aclose()


def answer_of(result: CallToolResult) -> ToolAnswer:
    """The text of a tool's result, as the model reads it (images and blobs are named, not sent)."""
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, TextContent):
            parts.append(item.text)
        elif isinstance(item, ImageContent):
            parts.append(f"[an image ({item.mime_type}) the model cannot see here]")
        elif isinstance(item, EmbeddedResource):
            resource = item.resource
            parts.append(getattr(resource, "text", None) or f"[a resource: {resource.uri}]")
        else:
            parts.append(f"[{getattr(item, 'type', 'content')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return ToolAnswer("\n".join(parts), bool(result.is_error))


def never_ran(exc: BaseException) -> bool:
    """Whether a failed call certainly did not reach the tool: no connection was made, or the server answered
    that it does not know the session (a streamable HTTP server that restarted)."""
    seen: list[BaseException] = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, httpx2.ConnectError | httpx2.ConnectTimeout):
            return True
        if isinstance(current, MCPError) and current.message == "Session terminated":
            return True
        if isinstance(current, BaseExceptionGroup):
            seen.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                seen.append(linked)
    return False


def describe(exc: BaseException) -> str:
    """One line about a failure, without the stack (nested groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0][:300]


class McpClients:
    """The process's MCP client (see the module's docstring): built once, on the resources."""

    def __init__(self) -> None:
        self._held: dict[str, _HeldSession] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def list_tools(
        self, endpoint: McpEndpoint, policy: EgressPolicy, *, time_limit: float
    ) -> list[ListedTool]:
        """Every tool the server lists, on a session of its own (creating or refreshing a server)."""
        try:
            async with asyncio.timeout(time_limit), _open(endpoint, policy) as client:
                listed: list[ListedTool] = []
                cursor: str | None = None
                for _ in range(LIST_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    listed += [
                        ListedTool(tool.name, tool.description or "", dict(tool.input_schema or {}))
                        for tool in page.tools
                    ]
                    cursor = page.next_cursor
                    if not cursor:
                        break
                return listed
        except TimeoutError:
            raise McpFailed(f"the server did not answer within {time_limit:g} seconds") from None
        except EgressError as exc:
            raise McpFailed(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the SDK and its transports raise many kinds
            raise McpFailed(f"the server could not be reached: {describe(exc)}") from None

    async def call_tool(
        self,
        endpoint: McpEndpoint,
        name: str,
        arguments: dict[str, Any],
        policy: EgressPolicy,
        *,
        time_limit: float,
    ) -> ToolAnswer:
        """Call ``name`` on a held session; raises :class:`McpFailed` when the server fails or no answer came
        in time (an error the tool itself reports is an answer, with ``is_error``)."""
        deadline = time.monotonic() + time_limit
        for attempt in range(2):
            held, fresh = await self._session(endpoint, policy, deadline)
            try:
                async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                    assert held.client is not None
                    result = await held.client.call_tool(name, arguments)
                return answer_of(result)
            except TimeoutError:
                raise McpFailed(f"it did not answer within {time_limit:g} seconds") from None
            except Exception as exc:  # noqa: BLE001 - the SDK and its transports raise many kinds
                await self._drop(endpoint.key, held)
                if fresh or attempt or not never_ran(exc):
                    # A session just opened failed (the server is the problem), or the call may have run
                    # before the failure: calling again could do its work twice.
                    raise McpFailed(f"the server failed: {describe(exc)}") from None
                # The held session had gone stale (the server restarted and forgot it, or its connection
                # closed): the call was refused unrun, so it is made once more, on a new session.
        raise McpFailed("the server failed")  # not reached

    async def _session(
        self, endpoint: McpEndpoint, policy: EgressPolicy, deadline: float
    ) -> tuple[_HeldSession, bool]:
        """The held session for ``endpoint`` and whether it was opened now."""
        loop = asyncio.get_running_loop()
        key = endpoint.key
        await self._close_idle()
        held = self._held.get(key)
        if held is not None and held.loop is loop and held.client is not None:
            held.used_at = time.monotonic()
            return held, False
        lock = self._opening.setdefault(key, asyncio.Lock())
        try:
            async with asyncio.timeout(max(0.001, deadline - time.monotonic())), lock:
                held = self._held.get(key)
                if held is not None and held.loop is loop and held.client is not None:
                    return held, False
                if held is not None:
                    await self._drop(key, held)
                held = _HeldSession(endpoint, policy, loop)
                held.start()
                await held.ready.wait()
        except TimeoutError:
            raise McpFailed("the server did not answer in time") from None
        if held.client is None:
            error = held.error
            if isinstance(error, EgressError):
                raise McpFailed(str(error))
            raise McpFailed(f"the server could not be reached: {describe(error or Exception())}")
        self._held[key] = held
        return held, True

    async def _drop(self, key: str, held: _HeldSession) -> None:
        if self._held.get(key) is held:
            del self._held[key]
        if held.loop is asyncio.get_running_loop():
            await held.close()

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for key, held in list(self._held.items()):
            if now - held.used_at > IDLE_SECONDS or held.client is None:
                await self._drop(key, held)

    async def close(self) -> None:
        for key, held in list(self._held.items()):
            await self._drop(key, held)


def endpoint_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(headers.items()))
