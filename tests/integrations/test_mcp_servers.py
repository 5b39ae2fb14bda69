"""Connecting MCP servers: tools listed from real servers, secrets kept, addresses guarded, orgs apart."""

from __future__ import annotations

import asyncio
import json

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hutch.accounts.models import OrgRole
from hutch.audit.models import AuditEntry
from hutch.integrations.models import McpServer
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import Account, create_account
from tests.fakes.mcp import LocalServer, McpTestServer
from tests.fakes.server import free_port
from tests.integrations.conftest import configure, connect

TOOL_NAMES = {"add", "lookup.order", "fail", "hang", "huge"}


async def test_a_server_is_connected_with_its_tools_listed(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer
) -> None:
    created = await connect(client, owner, mcp_server.url)

    assert created["status"] == "connected" and created["error"] is None
    assert created["transport"] == "streamable_http"
    assert {t["name"] for t in created["tools"]} == TOOL_NAMES
    add = next(t for t in created["tools"] if t["name"] == "add")
    assert add["description"] == "Add two whole numbers."
    assert set(add["input_schema"]["properties"]) == {"a", "b"}

    listed = await client.get("/api/v1/mcp-servers", headers=owner.headers)
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["id"] == created["id"]
    one = await client.get(f"/api/v1/mcp-servers/{created['id']}", headers=owner.headers)
    assert one.status_code == 200 and one.json()["name"] == "Shop"


async def test_an_sse_server_is_connected_too(
    client: AsyncClient, owner: Account, local: Resources, sse_server: McpTestServer
) -> None:
    created = await connect(client, owner, sse_server.url)

    assert created["transport"] == "sse" and created["status"] == "connected"
    assert {t["name"] for t in created["tools"]} == TOOL_NAMES


async def test_header_values_are_sent_encrypted_at_rest_and_never_answered(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    mcp_server: McpTestServer,
    session: AsyncSession,
) -> None:
    mcp_server.headers_seen.clear()
    created = await connect(
        client, owner, mcp_server.url, headers={"X-Shop-Key": "shop-key-5551"}, bearer_token="tok-77aa"
    )

    assert created["header_names"] == ["Authorization", "X-Shop-Key"]
    assert any(
        h.get("x-shop-key") == "shop-key-5551" and h.get("authorization") == "Bearer tok-77aa"
        for h in mcp_server.headers_seen
    )
    answers = [
        json.dumps(created),
        (await client.get("/api/v1/mcp-servers", headers=owner.headers)).text,
        (await client.get(f"/api/v1/mcp-servers/{created['id']}", headers=owner.headers)).text,
        (await client.post(f"/api/v1/mcp-servers/{created['id']}/refresh", headers=owner.headers)).text,
    ]
    for answer in answers:
        assert "shop-key-5551" not in answer and "tok-77aa" not in answer
    row = await session.scalar(select(McpServer).where(McpServer.id == created["id"]))
    assert row is not None and row.headers_encrypted is not None
    assert "shop-key-5551" not in row.headers_encrypted and "tok-77aa" not in row.headers_encrypted


async def test_a_server_that_does_not_answer_is_kept_unreachable_until_a_refresh_finds_it(
    client: AsyncClient, owner: Account, local: Resources
) -> None:
    server = McpTestServer()
    server.port = free_port()
    created = await connect(client, owner, server.url)

    assert created["status"] == "unreachable" and created["tools"] == []
    assert "could not be reached" in created["error"]

    server.start()  # the server comes up at that address
    try:
        refreshed = await client.post(f"/api/v1/mcp-servers/{created['id']}/refresh", headers=owner.headers)
    finally:
        server.stop()
    assert refreshed.status_code == 200
    assert refreshed.json()["status"] == "connected" and refreshed.json()["error"] is None
    assert {t["name"] for t in refreshed.json()["tools"]} == TOOL_NAMES


async def test_private_addresses_are_refused_unless_the_operator_allows_them(
    client: AsyncClient, owner: Account, mcp_server: McpTestServer
) -> None:
    for url in (mcp_server.url, "http://169.254.169.254/mcp", "https://10.0.0.8/mcp"):
        refused = await client.post(
            "/api/v1/mcp-servers", json={"name": "Inside", "url": url}, headers=owner.headers
        )
        assert refused.status_code == 422, url
        message = refused.json()["detail"][0]["msg"]
        assert "HUTCH_EGRESS_ALLOW" in message
    assert (
        "loopback"
        in (
            await client.post(
                "/api/v1/mcp-servers", json={"name": "Inside", "url": mcp_server.url}, headers=owner.headers
            )
        ).json()["detail"][0]["msg"]
    )


async def test_urls_that_are_not_http_are_refused(
    client: AsyncClient, owner: Account, local: Resources
) -> None:
    for url in ("ftp://example.com/mcp", "not a url", "file:///etc/passwd", "https:///nohost"):
        refused = await client.post(
            "/api/v1/mcp-servers", json={"name": "X", "url": url}, headers=owner.headers
        )
        assert refused.status_code == 422, (url, refused.text)
    bad_header = await client.post(
        "/api/v1/mcp-servers",
        json={"name": "X", "url": "https://example.com/mcp", "headers": {"X-Key": "a\nb"}},
        headers=owner.headers,
    )
    assert bad_header.status_code == 422


async def test_another_orgs_server_is_not_found(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    mcp_server: McpTestServer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    created = await connect(client, owner, mcp_server.url)
    stranger = await create_account(session, settings, org_name="Other Org")

    for method, path in (
        ("GET", f"/api/v1/mcp-servers/{created['id']}"),
        ("POST", f"/api/v1/mcp-servers/{created['id']}/refresh"),
        ("DELETE", f"/api/v1/mcp-servers/{created['id']}"),
    ):
        answer = await client.request(method, path, headers=stranger.headers)
        assert answer.status_code == 404, (method, path)
    assert (await client.get("/api/v1/mcp-servers", headers=stranger.headers)).json()["total"] == 0
    assert (
        await client.get(f"/api/v1/mcp-servers/{created['id']}", headers=owner.headers)
    ).status_code == 200


async def test_members_read_and_only_admins_connect(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    mcp_server: McpTestServer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    created = await connect(client, owner, mcp_server.url)
    member = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)

    assert (await client.get("/api/v1/mcp-servers", headers=member.headers)).json()["total"] == 1
    refused = await client.post(
        "/api/v1/mcp-servers", json={"name": "Mine", "url": mcp_server.url}, headers=member.headers
    )
    assert refused.status_code == 403
    assert (
        await client.delete(f"/api/v1/mcp-servers/{created['id']}", headers=member.headers)
    ).status_code == 403


async def test_deleting_a_server_takes_its_tools_off_agents_and_is_audited(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    mcp_server: McpTestServer,
    session: AsyncSession,
) -> None:
    created = await connect(client, owner, mcp_server.url)
    agent = await client.post(
        "/api/v1/agents",
        json={"name": "Clerk", "tools": ["current_time", f"mcp:{created['id']}:add"]},
        headers=owner.headers,
    )
    assert agent.status_code == 201, agent.text

    deleted = await client.delete(f"/api/v1/mcp-servers/{created['id']}", headers=owner.headers)

    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/v1/mcp-servers/{created['id']}", headers=owner.headers)
    ).status_code == 404
    after = await client.get(f"/api/v1/agents/{agent.json()['id']}", headers=owner.headers)
    assert after.json()["tools"] == ["current_time"]
    actions = set(
        (await session.scalars(select(AuditEntry.action).where(AuditEntry.target == created["id"]))).all()
    )
    assert actions == {"mcp_server_created", "mcp_server_deleted"}


async def test_no_database_connection_is_held_while_a_slow_server_lists_its_tools(
    live: LiveDeployment, settings: Settings
) -> None:
    async def silent(request: Request) -> Response:
        await asyncio.sleep(3)
        return Response(status_code=504)

    server = LocalServer(Starlette(routes=[Route("/mcp", silent, methods=["GET", "POST", "DELETE"])]))
    server.start()
    try:
        configure(live.resources, egress_allow=["127.0.0.1"], tool_timeout_seconds=1.5)
        owner = await create_account(live.session, settings)
        await live.session.commit()
        pool = live.resources.database.engine.pool
        creating = asyncio.ensure_future(
            live.client.post(
                "/api/v1/mcp-servers",
                json={"name": "Slow", "url": f"{server.base_url}/mcp"},
                headers=owner.headers,
            )
        )
        await asyncio.sleep(0.7)  # the server is being asked for its tools
        assert not creating.done()
        held = pool.checkedout()  # type: ignore[attr-defined]
        created = await creating
    finally:
        server.stop()

    assert held == 0
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "unreachable" and "1.5 seconds" in created.json()["error"]
