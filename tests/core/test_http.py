"""Error shapes, request ids, CORS and security headers as a client sees them."""

from __future__ import annotations

import io
import logging

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from hutch.app import create_app
from hutch.core.errors import Conflict, RateLimited
from hutch.core.logging import configure_logging
from hutch.db.engine import UnitOfWork
from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import create_account


class Payload(BaseModel):
    password: str
    count: int


def _app_with_test_routes(resources: Resources) -> FastAPI:
    app = create_app(resources=resources)

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("database password=hunter2-secret leaked into an exception")

    @app.get("/test/conflict")
    async def conflict() -> None:
        raise Conflict("That name is taken.")

    @app.get("/test/limited")
    async def limited() -> None:
        raise RateLimited(retry_after=7)

    @app.post("/test/validate")
    async def validate(payload: Payload) -> dict[str, int]:
        return {"count": payload.count}

    return app


@pytest.fixture
async def test_client(resources: Resources) -> AsyncClient:
    app = _app_with_test_routes(resources)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    return AsyncClient(transport=transport, base_url="http://testserver")


async def test_unknown_route_answers_json_detail(client: AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_domain_errors_map_to_status_and_detail(test_client: AsyncClient) -> None:
    conflict = await test_client.get("/test/conflict")
    assert conflict.status_code == 409
    assert conflict.json() == {"detail": "That name is taken."}
    limited = await test_client.get("/test/limited")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"


async def test_validation_errors_keep_list_form_without_submitted_values(test_client: AsyncClient) -> None:
    response = await test_client.post("/test/validate", json={"password": "s3cret-value", "count": "many"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["body", "count"]
    assert "s3cret-value" not in response.text and "many" not in response.text


async def test_unexpected_error_is_generic_500_with_request_id_and_logged_with_stack(
    test_client: AsyncClient,
) -> None:
    stream = io.StringIO()
    configure_logging(json_logs=True, level="INFO")
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        response = await test_client.get("/test/boom", headers={"X-Request-ID": "req-abc-123"})
    finally:
        configure_logging(json_logs=False, level="INFO")
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-abc-123"
    assert response.json() == {
        "detail": "Internal server error. Quote request id req-abc-123 when reporting it."
    }
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    logged = stream.getvalue()
    assert '"request_id": "req-abc-123"' in logged
    assert "Traceback" in logged and "RuntimeError" in logged
    assert "hunter2-secret" not in logged


async def test_request_id_is_generated_and_unsafe_ids_are_replaced(client: AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["X-Request-ID"] == "trace-42"
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] != "bad id\twith spaces"


async def test_cors_allows_only_configured_origins(resources: Resources) -> None:
    settings = resources.settings.model_copy(update={"allowed_origins": ["https://app.example.com"]})
    import dataclasses

    app = create_app(resources=dataclasses.replace(resources, settings=settings))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        preflight = {"Access-Control-Request-Method": "GET"}
        allowed = await client.options("/healthz", headers={"Origin": "https://app.example.com", **preflight})
        denied = await client.options("/healthz", headers={"Origin": "https://evil.example.net", **preflight})
        simple = await client.get("/healthz", headers={"Origin": "https://evil.example.net"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_no_cors_headers_without_configured_origins(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_html_pages_carry_security_headers(client: AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    api = await client.get("/healthz")
    assert "content-security-policy" not in api.headers
    assert api.headers["x-content-type-options"] == "nosniff"


async def test_a_response_leaves_only_once_its_transaction_is_committed(
    app: FastAPI, session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that got its 201 may use what it created at once, on another connection: the commit must
    come before the response, not after it has been sent."""
    owner = await create_account(session, settings)
    events: list[str] = []
    checkpoint = UnitOfWork.checkpoint

    async def recorded_checkpoint(self: UnitOfWork) -> None:
        await checkpoint(self)
        events.append("commit")

    async def recorded_app(scope: Scope, receive: Receive, send: Send) -> None:
        async def recorded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                events.append("response")
            await send(message)

        await app(scope, receive, recorded_send)

    monkeypatch.setattr(UnitOfWork, "checkpoint", recorded_checkpoint)
    async with AsyncClient(transport=ASGITransport(app=recorded_app), base_url="http://testserver") as client:
        created = await client.post("/api/v1/agents", json={"name": "Ada"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    assert events == ["commit", "response"]
