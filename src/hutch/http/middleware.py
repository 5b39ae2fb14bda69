"""One ASGI middleware for what every request needs: a request id, metrics, an access log and headers."""

from __future__ import annotations

import json
import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hutch.core.errors import internal_error_body
from hutch.core.metrics import Metrics
from hutch.core.request_context import set_request_id

log = structlog.get_logger("hutch.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UNTRACKED_PATHS = frozenset({"/metrics"})

_HTML_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# The interactive API docs load Swagger UI / ReDoc from their CDN.
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https:; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; worker-src blob:; frame-ancestors 'none'"
)


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, form_targets: str = "", image_sources: str = ""
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Forms may also lead to these origins (a checkout form answers with a redirect to Stripe); images
        # may also come from the brand's logo host.
        csp = _HTML_CSP.replace("img-src 'self'", f"img-src 'self' {image_sources}".rstrip(), 1)
        self.html_csp = f"{csp} {form_targets}".rstrip()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_code = 500
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    is_docs = path in ("/docs", "/redoc")
                    headers.setdefault("Content-Security-Policy", _DOCS_CSP if is_docs else self.html_csp)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            await send(message)

        response_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:  # the last line of defence: log it, answer a generic 500
            log.error("unhandled error", method=scope["method"], path=path, exc_info=exc)
            if response_started:
                raise
            body = json.dumps(internal_error_body(request_id)).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if path not in _UNTRACKED_PATHS:
                method = scope["method"]
                self.metrics.http_requests.labels(method, template, str(status_code)).inc()
                self.metrics.http_latency.labels(method, template).observe(elapsed)
            if status_code >= 500:
                log.warning("request failed", method=scope["method"], path=path, status=status_code)
            else:
                log.debug(
                    "request",
                    method=scope["method"],
                    path=path,
                    status=status_code,
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            set_request_id(None)
