"""The id of the request (or job) being served, for logs and error answers."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.requests import Request

_request_id: ContextVar[str | None] = ContextVar("hutch_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


def client_ip(request: Request) -> str | None:
    """The caller's address (the proxy's, unless uvicorn runs with trusted proxy headers)."""
    return request.client.host if request.client else None
