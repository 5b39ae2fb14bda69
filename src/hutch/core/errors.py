"""Domain exceptions with their HTTP status, and the one handler that turns them into ``{"detail": ...}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class HutchError(Exception):
    """Base of every error a client may see. ``detail`` is safe to show; it never holds secrets."""

    status_code = 400
    # Most errors roll the request's transaction back. A few must keep what was written before them
    # (a failed login's audit entry, the revocation of a reused refresh token's family).
    keeps_changes = False

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers

    def body(self) -> Any:
        """The ``detail`` of the JSON answer."""
        return self.detail


class BadRequest(HutchError):
    status_code = 400


class Unauthorized(HutchError):
    status_code = 401

    def __init__(self, detail: str = "Not authenticated.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class PaymentRequired(HutchError):
    status_code = 402


class QuotaExceeded(PaymentRequired):
    def __init__(self, limit: str, plan: str, detail: str | None = None) -> None:
        super().__init__(detail or f"The {plan} plan allows no more {limit}; upgrade the plan to add more.")
        self.limit = limit
        self.plan = plan


class Forbidden(HutchError):
    status_code = 403


class NotFound(HutchError):
    status_code = 404

    def __init__(self, what: str = "Resource", detail: str | None = None) -> None:
        super().__init__(detail or f"{what} not found.")


class Conflict(HutchError):
    status_code = 409


class InvalidField(HutchError):
    """A value that passed the schema but not the rules (an unknown model, tool or provider): 422."""

    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def body(self) -> Any:
        # The same list form FastAPI's own 422 answers use.
        return [{"loc": ["body", self.field], "msg": self.message, "type": "value_error"}]


class PayloadTooLarge(HutchError):
    status_code = 413


class UnsupportedMediaType(HutchError):
    status_code = 415


class RateLimited(HutchError):
    status_code = 429

    def __init__(self, retry_after: int, detail: str = "Too many requests; retry later.") -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail, headers={"Retry-After": str(self.retry_after)})


class ServiceUnavailable(HutchError):
    status_code = 503


def error_responses(*errors: type[HutchError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the domain errors a route can answer."""
    return {
        err.status_code: {"description": (err.__doc__ or err.__name__).strip().splitlines()[0]}
        for err in errors
    }


def _json(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


# The OpenAI-compatible API answers errors the way OpenAI does, so its SDKs raise the right exceptions.
OPENAI_PATH_PREFIX = "/v1/"
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


# Anthropic's Messages API answers in Anthropic's shape, so its SDKs raise the right exceptions too.
ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",  # a plan limit or no credits left (Anthropic's own status for billing)
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",  # a member holds the conversation: this request cannot go on
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PATH_PREFIX)


def _is_anthropic(request: Request) -> bool:
    return request.url.path in ANTHROPIC_PATHS


def _api_error(request: Request, status: int, message: str, exc: Exception | None = None) -> Response | None:
    """The error in the shape of the API the path belongs to (Anthropic's, OpenAI's); None for Hutch's own."""
    headers = getattr(exc, "headers", None)
    if _is_anthropic(request):
        return JSONResponse(anthropic_error(status, message), status_code=status, headers=headers)
    if _is_openai(request):
        body = openai_error(status, message, getattr(exc, "code", None), getattr(exc, "param", None))
        return JSONResponse(body, status_code=status, headers=headers)
    return None


def _page(request: Request, status: int, detail: Any) -> Response | None:
    """The web pages' own rendering of an error (they set ``request.state.error_page``), else None."""
    renderer: Callable[[Request, int, str], Response] | None = getattr(request.state, "error_page", None)
    if renderer is None:
        return None
    return renderer(request, status, detail if isinstance(detail, str) else "Some fields are not valid.")


async def _handle_hutch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HutchError)
    page = _page(request, exc.status_code, exc.detail)
    if page is not None:
        return page
    shaped = _api_error(request, exc.status_code, str(exc.detail), exc)
    if shaped is not None:
        return shaped
    return _json(exc.status_code, exc.body(), exc.headers)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if 300 <= exc.status_code < 400 and headers and "Location" in headers:
        return RedirectResponse(headers["Location"], status_code=exc.status_code)
    page = _page(request, exc.status_code, exc.detail)
    if page is not None:
        return page
    shaped = _api_error(request, exc.status_code, str(exc.detail), exc)
    if shaped is not None:
        return shaped
    return _json(exc.status_code, exc.detail, headers)


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    page = _page(request, 422, None)
    if page is not None:
        return page
    # FastAPI's list form, minus the submitted values: they may hold passwords or tokens.
    errors = [{k: v for k, v in err.items() if k not in ("input", "ctx", "url")} for err in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    param = ".".join(str(p) for p in first.get("loc", [])[1:]) or None
    if _is_anthropic(request):
        return JSONResponse(anthropic_error(400, f"{param or 'request'}: {first.get('msg')}"), 400)
    if _is_openai(request):
        return JSONResponse(openai_error(400, f"{param or 'request'}: {first.get('msg')}", None, param), 400)
    return _json(422, errors)


def internal_error_body(request_id: str) -> dict[str, str]:
    """What a client sees for an unexpected failure: nothing internal, only the id to quote."""
    return {"detail": f"Internal server error. Quote request id {request_id} when reporting it."}


def _is_nul_text(exc: DBAPIError) -> bool:
    """PostgreSQL refuses NUL characters in text: a client's input, not a server fault."""
    return "0x00" in str(exc.orig) and "byte sequence" in str(exc.orig)


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if _is_nul_text(exc):
        return await _handle_hutch_error(request, BadRequest("Text cannot contain NUL (\\x00) characters."))
    if exc.connection_invalidated:  # the database went away (restart, failover): worth a retry
        unavailable = ServiceUnavailable("The database is unavailable for a moment; retry shortly.")
        unavailable.headers = {"Retry-After": "5"}
        return await _handle_hutch_error(request, unavailable)
    if type(exc.orig).__name__ == "TooManyConnectionsError":  # PostgreSQL's max_connections reached
        return await _handle_database_busy(request, exc)
    raise exc  # an unexpected failure: the 500 path logs it with the request id


async def _handle_database_busy(request: Request, exc: Exception) -> Response:
    """Every connection busy (the pool waited its timeout, or PostgreSQL has no connection left): a burst
    larger than the deployment serves. A 503 worth a retry, not a 500."""
    log.warning("the database is saturated", error=exc.__class__.__name__, path=request.url.path)
    busy = ServiceUnavailable("The database is busy with other requests; retry shortly.")
    busy.headers = {"Retry-After": "2"}
    return await _handle_hutch_error(request, busy)


async def _handle_unreachable(request: Request, exc: Exception) -> Response:
    """The database's socket is gone or refuses connections (a restart, a failover): a 503 worth a retry,
    not an unexplained 500. Other OS errors stay unexpected failures."""
    if not isinstance(exc, ConnectionError | FileNotFoundError):
        raise exc
    log.warning("a service is unreachable", error=f"{exc.__class__.__name__}: {exc}", path=request.url.path)
    unavailable = ServiceUnavailable("A service we depend on is unavailable for a moment; retry shortly.")
    unavailable.headers = {"Retry-After": "5"}
    return await _handle_hutch_error(request, unavailable)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HutchError, _handle_hutch_error)
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(PoolTimeout, _handle_database_busy)
    app.add_exception_handler(OSError, _handle_unreachable)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation)


class StartupError(Exception):
    """Start-up cannot go on; the message is one sentence telling the user what to do."""
