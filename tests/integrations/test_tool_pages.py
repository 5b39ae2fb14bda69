"""The dashboard's Tools page: connect an MCP server, see its tools, refresh, delete; define a webhook tool
and see its secret once; enable connected tools on an agent's settings tab."""

from __future__ import annotations

import re

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import Account, create_account
from tests.fakes.mcp import McpTestServer
from tests.web.test_dashboard import csrf_of, log_in


async def test_an_owner_connects_a_server_and_a_webhook_and_enables_them_on_an_agent(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer
) -> None:
    await log_in(client, owner.user.email)
    page = await client.get("/app/tools")
    assert page.status_code == 200 and 'href="/app/tools"' in page.text
    token = csrf_of(page)

    connected = await client.post(
        "/app/tools/mcp",
        data={
            "csrf": token,
            "name": "Shop",
            "url": mcp_server.url,
            "bearer_token": "tok-dash-1",
            "headers": "",
        },
    )
    assert connected.status_code == 303
    page = await client.get("/app/tools")
    assert "Shop" in page.text and "connected" in page.text and "lookup.order" in page.text
    assert "tok-dash-1" not in page.text

    made = await client.post(
        "/app/tools/webhooks",
        data={
            "csrf": token,
            "name": "get_weather",
            "description": "The weather now.",
            "parameters": '{"type": "object", "properties": {"city": {"type": "string"}}}',
            "url": "http://127.0.0.1:9/weather",
        },
    )
    assert made.status_code == 200, made.text
    secret = re.search(r"whsec_[\w-]+", made.text)
    assert secret is not None
    assert secret.group(0) not in (await client.get("/app/tools")).text

    agent = await client.post("/api/v1/agents", json={"name": "Clerk"}, headers=owner.headers)
    settings_page = await client.get(f"/app/agents/{agent.json()['id']}/settings")
    refs = re.findall(r'name="tools" value="((?:mcp|webhook):[^"]+)"', settings_page.text)
    assert any(r.endswith(":add") for r in refs) and any(r.startswith("webhook:") for r in refs)
    servers = (await client.get("/api/v1/mcp-servers", headers=owner.headers)).json()["items"]
    refresh = await client.post(f"/app/tools/mcp/{servers[0]['id']}/refresh", data={"csrf": token})
    assert refresh.status_code == 303
    deleted = await client.post(f"/app/tools/mcp/{servers[0]['id']}/delete", data={"csrf": token})
    assert deleted.status_code == 303
    assert "Shop" not in (await client.get("/app/tools")).text


async def test_a_refused_address_is_shown_next_to_its_field(
    client: AsyncClient, owner: Account, mcp_server: McpTestServer
) -> None:
    await log_in(client, owner.user.email)
    token = csrf_of(await client.get("/app/tools"))

    refused = await client.post(
        "/app/tools/mcp", data={"csrf": token, "name": "Inside", "url": mcp_server.url}
    )

    assert refused.status_code == 422 and "HUTCH_EGRESS_ALLOW" in refused.text


async def test_members_see_tools_but_cannot_change_them(
    client: AsyncClient, owner: Account, session: AsyncSession, settings: Settings, local: Resources
) -> None:
    member = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)
    await log_in(client, member.user.email)
    page = await client.get("/app/tools")
    assert page.status_code == 200 and "Connect a server" not in page.text

    refused = await client.post(
        "/app/tools/mcp", data={"csrf": csrf_of(page), "name": "X", "url": "https://example.com/mcp"}
    )
    assert refused.status_code == 403
