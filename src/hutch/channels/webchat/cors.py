"""Cross-origin access for the web chat widget's public routes.

The operator's ``HUTCH_ALLOWED_ORIGINS`` govern the dashboard API; the widget is embedded in customers'
sites, which each widget lists itself. Preflights are answered here for any origin (they carry no data and
no credentials); every widget route then checks the page's origin against its widget's list and refuses
others with 403, so only listed sites can talk to the agent. Answers echo the origin so the page can read
them, errors included.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WIDGET_PATHS = ("/api/v1/widget/", "/widget.js")
PREFLIGHT_MAX_AGE = "600"


def is_widget_path(path: str) -> bool:
    return path.startswith(WIDGET_PATHS)


class WidgetCORSMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_widget_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                    "Vary": "Origin",
                },
            )
            await preflight(scope, receive, send)
            return

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                answer["Access-Control-Allow-Origin"] = origin
                answer["Access-Control-Expose-Headers"] = "Retry-After, X-Request-ID"
                answer.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_origin)


class DashboardCORSMiddleware(CORSMiddleware):
    """Starlette's CORS for ``HUTCH_ALLOWED_ORIGINS``, leaving the widget's routes to the widget's rules."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_widget_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
