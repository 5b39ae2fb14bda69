"""Real MCP servers built with the official SDK (streamable HTTP or SSE), served by uvicorn on loopback, and
a local webhook endpoint that checks Hutch's signature: what connected tools talk to in tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


def build_mcp_server() -> MCPServer:
    """Tools that answer, fail, hang and answer too much."""
    server = MCPServer("hutch-test-tools")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    @server.tool(name="lookup.order")
    def lookup_order(order_id: str) -> str:
        """Find an order's status by its id."""
        return json.dumps({"order_id": order_id, "status": "shipped"})

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ValueError("the warehouse is closed")

    @server.tool()
    async def hang(seconds: float = 30.0) -> str:
        """Answers after a long time."""
        await anyio.sleep(seconds)
        return "finally"

    @server.tool()
    def huge(size: int = 200_000) -> str:
        """Answers a very long text."""
        return "y" * size

    return server


class _RecordHeaders:
    def __init__(self, app: ASGIApp, seen: list[dict[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


class LocalServer:
    """An ASGI app on a loopback port, with its lifespan (the MCP session manager needs it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # 0: any free port
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class McpTestServer(LocalServer):
    def __init__(self, transport: str = "streamable_http") -> None:
        self.headers_seen: list[dict[str, str]] = []
        server = build_mcp_server()
        app = server.sse_app() if transport == "sse" else server.streamable_http_app()
        self.path = "/sse" if transport == "sse" else "/mcp"
        super().__init__(_RecordHeaders(app, self.headers_seen))

    @property
    def url(self) -> str:
        return self.base_url + self.path


@dataclass
class WebhookCall:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class WebhookState:
    secret: str = ""
    calls: list[WebhookCall] = field(default_factory=list)
    answer: Any = field(default_factory=lambda: {"temperature_c": 21, "sky": "clear"})
    status: int = 200
    delay: float = 0.0


class WebhookServer(LocalServer):
    """The org's endpoint: checks ``X-Hutch-Signature`` the way docs/tools.md tells customers to."""

    def __init__(self) -> None:
        self.state = WebhookState()
        super().__init__(Starlette(routes=[Route("/tools/weather", self._weather, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.base_url + "/tools/weather"

    async def _weather(self, request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(self.state.secret.encode(), body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, request.headers.get("x-hutch-signature", ""))
        self.state.calls.append(WebhookCall(dict(request.headers), body, ok))
        if self.state.delay:
            await anyio.sleep(self.state.delay)
        if not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return JSONResponse(self.state.answer, status_code=self.state.status)
