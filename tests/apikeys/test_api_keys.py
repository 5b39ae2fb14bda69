"""API keys: shown once, org-scoped, revoked at once, and every authentication rule a key meets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.budget import month_of
from hutch.apikeys.models import ApiKey, ApiKeySpend
from hutch.settings import Settings
from tests.factories import Account, create_account

# A key reaching a route that needs a signed-in user answers 403: proof that the key itself authenticated.
KEY_PROBE = "/api/v1/api-keys"


async def create_key(client: AsyncClient, owner: Account, **fields: object) -> dict[str, object]:
    response = await client.post("/api/v1/api-keys", json={"label": "ci", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_key_is_shown_once_and_stored_hashed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await create_key(client, owner, scopes=["read", "chat"])
    key = str(created["key"])
    assert key.startswith("hk_") and created["prefix"] == key[:11]
    assert created["scopes"] == ["read", "chat"]
    listing = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert listing.status_code == 200
    assert [item["id"] for item in listing.json()["items"]] == [created["id"]]
    assert key not in listing.text and "key_hash" not in listing.text
    stored = (await session.scalars(select(ApiKey.key_hash))).all()
    assert key not in stored


async def test_keys_authenticate_with_both_headers_and_revocation_is_immediate(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await create_key(client, owner)
    key = str(created["key"])
    assert (await client.get(KEY_PROBE, headers={"Authorization": f"Bearer {key}"})).status_code == 403
    assert (await client.get(KEY_PROBE, headers={"X-API-Key": key})).status_code == 403
    assert (
        await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner.headers)
    ).status_code == 204
    revoked = await client.get(KEY_PROBE, headers={"X-API-Key": key})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    listed = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"][0]
    assert listed["revoked_at"] is not None
    assert (await client.get(KEY_PROBE, headers={"X-API-Key": "hk_" + "x" * 43})).status_code == 401


async def test_expired_key_is_401(client: AsyncClient, session: AsyncSession, settings: Settings) -> None:
    owner = await create_account(session, settings)
    created = await create_key(client, owner)
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == created["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    response = await client.get(KEY_PROBE, headers={"X-API-Key": str(created["key"])})
    assert response.status_code == 401 and "expired" in response.json()["detail"]


async def test_another_orgs_key_is_not_found_and_org_header_must_match(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_account(session, settings, org_name="A")
    bob = await create_account(session, settings, org_name="B")
    alices = await create_key(client, alice)
    assert (await client.delete(f"/api/v1/api-keys/{alices['id']}", headers=bob.headers)).status_code == 404
    assert (await client.get("/api/v1/api-keys", headers=bob.headers)).json()["items"] == []
    foreign_org = {"X-API-Key": str(alices["key"]), "X-Org-Id": bob.org.id}
    assert (await client.get(KEY_PROBE, headers=foreign_org)).status_code == 404
    member_of_a = {**bob.headers, "X-Org-Id": alice.org.id}
    assert (await client.get("/api/v1/api-keys", headers=member_of_a)).status_code == 404


async def test_rate_limit_answers_429_with_retry_after(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await create_key(client, owner, rate_limit_per_minute=3)
    headers = {"X-API-Key": str(created["key"])}
    statuses = [(await client.get(KEY_PROBE, headers=headers)).status_code for _ in range(4)]
    assert statuses[:3] == [403, 403, 403]
    limited = await client.get(KEY_PROBE, headers=headers)
    assert statuses[3] == 429 and limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_spent_budget_is_402_and_last_use_is_recorded(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await create_key(client, owner, monthly_budget_cents=500)
    headers = {"X-API-Key": str(created["key"])}
    current = await client.get("/api/v1/api-keys/current", headers=headers)
    assert current.status_code == 200 and current.json()["id"] == created["id"]
    assert current.json()["monthly_budget_cents"] == 500 and "key" not in current.json()
    used = (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"][0]["last_used_at"]
    assert used is not None
    assert (await client.get("/api/v1/api-keys/current", headers=owner.headers)).status_code == 403
    session.add(
        ApiKeySpend(api_key_id=str(created["id"]), month=month_of(datetime.now(UTC)), spent_cents=500)
    )
    await session.commit()
    spent = await client.get(KEY_PROBE, headers=headers)
    assert spent.status_code == 402 and "budget" in spent.json()["detail"]


async def test_validation_and_admin_scope(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for bad in ({"label": ""}, {"label": "x", "scopes": ["fly"]}, {"label": "x", "expires_at": past}):
        assert (await client.post("/api/v1/api-keys", json=bad, headers=owner.headers)).status_code == 422
    no_read = await create_key(client, owner, scopes=["chat"])
    lacking = await client.get("/api/v1/api-keys/current", headers={"X-API-Key": str(no_read["key"])})
    assert lacking.status_code == 403 and "'read' scope" in lacking.json()["detail"]
    admin_scope = await client.post(
        "/api/v1/api-keys", json={"label": "x", "scopes": ["admin"]}, headers=owner.headers
    )
    assert admin_scope.status_code == 403
    admin = await create_account(session, settings, platform_admin=True)
    allowed = await client.post(
        "/api/v1/api-keys", json={"label": "x", "scopes": ["admin"]}, headers=admin.headers
    )
    assert allowed.status_code == 201
    assert (await client.post("/api/v1/api-keys", json={"label": "x"})).status_code == 401
