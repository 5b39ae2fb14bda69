"""Webhook tools: defined by the org, the secret shown once, addresses guarded, orgs apart."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import Account, create_account
from tests.fakes.mcp import WebhookServer

WEATHER = {
    "name": "get_weather",
    "description": "The weather now in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


async def define(client: AsyncClient, owner: Account, url: str, **changes: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhook-tools", json={**WEATHER, "url": url, **changes}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_signing_secret_is_shown_once(
    client: AsyncClient, owner: Account, local: Resources, webhook_server: WebhookServer
) -> None:
    created = await define(client, owner, webhook_server.url)

    assert created["signing_secret"].startswith("whsec_")
    assert created["name"] == "get_weather" and created["parameters"]["required"] == ["city"]
    listed = await client.get("/api/v1/webhook-tools", headers=owner.headers)
    one = await client.get(f"/api/v1/webhook-tools/{created['id']}", headers=owner.headers)
    patched = await client.patch(
        f"/api/v1/webhook-tools/{created['id']}", json={"description": "Weather, now."}, headers=owner.headers
    )
    assert listed.json()["total"] == 1 and one.status_code == 200 and patched.status_code == 200
    assert patched.json()["description"] == "Weather, now."
    for answer in (listed, one, patched):
        assert created["signing_secret"] not in answer.text and "signing_secret" not in answer.text


async def test_names_urls_and_schemas_are_checked(
    client: AsyncClient, owner: Account, local: Resources
) -> None:
    base = {**WEATHER, "url": "https://tools.example.com/weather"}
    for changes in (
        {"name": "get weather"},  # providers refuse spaces in tool names
        {"name": "x" * 65},
        {"parameters": {"type": "string"}},
        {"url": "ftp://tools.example.com/weather"},
        {"url": "http://tools.example.com/weather"},  # secrets go over https only
    ):
        answer = await client.post("/api/v1/webhook-tools", json={**base, **changes}, headers=owner.headers)
        assert answer.status_code == 422, (changes, answer.text)


async def test_private_addresses_are_refused_unless_allowed(client: AsyncClient, owner: Account) -> None:
    for url in ("https://127.0.0.1/hook", "https://169.254.169.254/latest", "https://192.168.1.10/hook"):
        answer = await client.post(
            "/api/v1/webhook-tools", json={**WEATHER, "url": url}, headers=owner.headers
        )
        assert answer.status_code == 422, url
        assert "HUTCH_EGRESS_ALLOW" in answer.json()["detail"][0]["msg"]


async def test_a_name_is_used_once_per_org(
    client: AsyncClient, owner: Account, local: Resources, webhook_server: WebhookServer
) -> None:
    await define(client, owner, webhook_server.url)
    again = await client.post(
        "/api/v1/webhook-tools", json={**WEATHER, "url": webhook_server.url}, headers=owner.headers
    )
    assert again.status_code == 409


async def test_another_orgs_tool_is_not_found_nor_enabled(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    webhook_server: WebhookServer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    created = await define(client, owner, webhook_server.url)
    stranger = await create_account(session, settings, org_name="Other Org")

    for method in ("GET", "DELETE"):
        answer = await client.request(
            method, f"/api/v1/webhook-tools/{created['id']}", headers=stranger.headers
        )
        assert answer.status_code == 404
    patched = await client.patch(
        f"/api/v1/webhook-tools/{created['id']}", json={"description": "mine"}, headers=stranger.headers
    )
    assert patched.status_code == 404

    foreign = await client.post(
        "/api/v1/agents",
        json={"name": "Spy", "tools": [f"webhook:{created['id']}"]},
        headers=stranger.headers,
    )
    unknown = await client.post(
        "/api/v1/agents",
        json={"name": "Spy", "tools": ["webhook:wht_doesnotexist"]},
        headers=stranger.headers,
    )
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.json()["detail"][0]["msg"].replace(created["id"], "X") == unknown.json()["detail"][0][
        "msg"
    ].replace("wht_doesnotexist", "X")


async def test_agent_tools_list_the_orgs_connected_tools(
    client: AsyncClient, owner: Account, local: Resources, webhook_server: WebhookServer
) -> None:
    created = await define(client, owner, webhook_server.url)

    tools = (await client.get("/api/v1/agent-tools", headers=owner.headers)).json()["items"]

    names = {t["name"]: t for t in tools}
    assert "current_time" in names and names["current_time"]["kind"] == "builtin"
    assert names[f"webhook:{created['id']}"]["kind"] == "webhook"

    deleted = await client.delete(f"/api/v1/webhook-tools/{created['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    tools = (await client.get("/api/v1/agent-tools", headers=owner.headers)).json()["items"]
    assert f"webhook:{created['id']}" not in {t["name"] for t in tools}
