"""A key's owner changes its label and limits after creating it; the key itself stays the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.settings import Settings
from tests.factories import Account, create_account


async def new_key(client: AsyncClient, owner: Account, **fields: object) -> dict[str, object]:
    response = await client.post("/api/v1/api-keys", json={"label": "k", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_limits_change_and_null_removes_one(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Only"}, headers=owner.headers)).json()
    key = await new_key(client, owner, monthly_budget_cents=500)
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    changed = await client.patch(
        f"/api/v1/api-keys/{key['id']}",
        json={
            "label": "renamed",
            "rate_limit_per_minute": 7,
            "agent_ids": [agent["id"]],
            "expires_at": later.isoformat(),
        },
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["label"], body["rate_limit_per_minute"], body["agent_ids"]) == ("renamed", 7, [agent["id"]])
    assert body["monthly_budget_cents"] == 500  # left out: unchanged
    assert datetime.fromisoformat(body["expires_at"]) == later
    assert "key" not in body

    cleared = await client.patch(
        f"/api/v1/api-keys/{key['id']}",
        json={"monthly_budget_cents": None, "agent_ids": None},
        headers=owner.headers,
    )
    assert (cleared.json()["monthly_budget_cents"], cleared.json()["agent_ids"]) == (None, None)
    current = await client.get("/api/v1/api-keys/current", headers={"X-API-Key": str(key["key"])})
    assert current.status_code == 200 and current.json()["rate_limit_per_minute"] == 7  # the same key works


async def test_bad_changes_are_refused_and_change_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    other = await create_account(session, settings, email="other@example.com", org_name="Other")
    foreign = (await client.post("/api/v1/agents", json={"name": "Theirs"}, headers=other.headers)).json()
    key = await new_key(client, owner, rate_limit_per_minute=10)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    url = f"/api/v1/api-keys/{key['id']}"
    for bad in (
        {"rate_limit_per_minute": 0},
        {"monthly_budget_cents": -1},
        {"expires_at": past},
        {"label": ""},
        {"label": None},
        {"agent_ids": [foreign["id"]]},
        {"rate_limit_per_minute": "fast"},
    ):
        refused = await client.patch(url, json=bad, headers=owner.headers)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail"]
    [listed] = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"]
    assert (listed["label"], listed["rate_limit_per_minute"], listed["agent_ids"]) == ("k", 10, None)

    refused = await client.post(
        "/api/v1/api-keys", json={"label": "x", "agent_ids": [foreign["id"]]}, headers=owner.headers
    )
    assert refused.status_code == 422
    await client.delete(url, headers=owner.headers)
    revoked = await client.patch(url, json={"rate_limit_per_minute": 3}, headers=owner.headers)
    assert revoked.status_code == 409 and "revoked" in revoked.json()["detail"]
    not_theirs = await client.patch(url, json={"rate_limit_per_minute": 3}, headers=other.headers)
    assert not_theirs.status_code == 404
