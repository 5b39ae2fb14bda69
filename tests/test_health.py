from __future__ import annotations

import dataclasses

from httpx import ASGITransport, AsyncClient

from hutch.app import create_app
from hutch.db.engine import Database
from hutch.resources import Resources


async def test_healthz_answers_ok(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok_when_database_is_migrated(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def _get(resources: Resources, path: str) -> tuple[int, dict[str, str]]:
    app = create_app(resources=resources)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(path)
        return response.status_code, response.json()


async def test_readyz_503_when_migrations_are_behind(resources: Resources) -> None:
    behind = dataclasses.replace(resources, migration_heads=frozenset({"a_newer_revision"}))
    status, body = await _get(behind, "/readyz")
    assert status == 503
    assert "hutch db upgrade" in body["detail"]


async def test_readyz_503_while_database_is_unreachable(resources: Resources) -> None:
    # Nothing listens on port 1 of the loopback interface.
    unreachable = Database("postgresql://hutch@127.0.0.1:1/hutch")
    try:
        status, body = await _get(dataclasses.replace(resources, database=unreachable), "/readyz")
    finally:
        await unreachable.dispose()
    assert status == 503
    assert body["detail"] == "database unreachable"
    healthy, _ = await _get(dataclasses.replace(resources, database=unreachable), "/healthz")
    assert healthy == 200


async def test_metrics_count_requests_by_route_template_and_status(client: AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no-such-page")
    text = (await client.get("/metrics")).text
    assert 'hutch_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "hutch_http_request_duration_seconds_bucket" in text
    assert "/metrics" not in text.split("hutch_http_requests_total", 1)[1].split("\n# ", 1)[0]


def test_app_lists_every_route_flat(app: object) -> None:
    # Route-driven checks (contract, tenant-isolation matrix) read app.routes.
    paths = {getattr(route, "path", None) for route in app.routes}  # type: ignore[attr-defined]
    assert {"/healthz", "/readyz", "/metrics"} <= paths
