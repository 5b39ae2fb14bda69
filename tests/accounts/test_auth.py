"""Signup, login, refresh, logout and /users/me as a client sees them."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.audit.models import AuditEntry
from hutch.core.security import create_access_token
from hutch.settings import Settings

PASSWORD = "a-perfectly-fine-password"


async def signup(client: AsyncClient, email: str, **extra: str) -> dict[str, object]:
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_signup_creates_user_org_and_tokens_and_first_user_is_admin(
    client: AsyncClient, session: AsyncSession
) -> None:
    first = await signup(client, "  Alice@Example.COM ", name="Alice")
    assert first["user"] == {
        "id": first["user"]["id"],  # type: ignore[index]
        "email": "alice@example.com",
        "name": "Alice",
        "is_platform_admin": True,
    }
    assert first["org"]["name"] == "Alice's org" and first["org"]["plan"] == "free"  # type: ignore[index]
    assert first["token_type"] == "bearer"
    second = await signup(client, "bob@example.com", org_name="Bob Ltd")
    assert second["user"]["is_platform_admin"] is False  # type: ignore[index]
    assert second["org"]["name"] == "Bob Ltd"  # type: ignore[index]
    assert PASSWORD not in str(first) + str(second)

    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert me.status_code == 200
    assert me.json()["orgs"] == [
        {"id": first["org"]["id"], "name": "Alice's org", "plan": "free", "role": "owner"}
    ]  # type: ignore[index]
    actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions.count("signup") == 2


async def test_duplicate_email_is_409_whatever_its_case(client: AsyncClient) -> None:
    await signup(client, "carol@example.com")
    again = await client.post(
        "/api/v1/auth/signup", json={"email": "CAROL@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409


async def test_short_or_common_passwords_are_422(client: AsyncClient) -> None:
    short = await client.post("/api/v1/auth/signup", json={"email": "d@example.com", "password": "short"})
    common = await client.post(
        "/api/v1/auth/signup", json={"email": "d@example.com", "password": "password123"}
    )
    assert short.status_code == 422 and common.status_code == 422
    assert "too common" in common.text


async def test_login_answers_the_same_for_unknown_email_and_wrong_password(
    client: AsyncClient, session: AsyncSession
) -> None:
    await signup(client, "erin@example.com")
    ok = await client.post("/api/v1/auth/login", json={"email": "ERIN@example.com", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "erin@example.com", "password": "nope-nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "who@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    failures = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed"))).all()
    assert len(failures) == 2  # kept although the answers were 401


async def test_a_login_with_the_longest_email_is_refused_and_audited_whole(
    client: AsyncClient, session: AsyncSession
) -> None:
    email = "x" * 308 + "@example.com"  # 320: the most the schema takes, over the column
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "nope-nope"})
    assert wrong.status_code == 401
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "login_failed"))
    assert entry is not None and entry.details["target"] == email and entry.target == email[:199] + "…"


async def test_repeated_login_failures_are_rate_limited(client: AsyncClient) -> None:
    await signup(client, "frank@example.com")
    email = "frank@example.com"
    statuses = [
        (await client.post("/api/v1/auth/login", json={"email": email, "password": "bad-guess"})).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    blocked = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


async def test_refresh_rotates_and_a_reused_token_kills_the_family(client: AsyncClient) -> None:
    first = await signup(client, "gina@example.com")
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    newer = rotated.json()["refresh_token"]
    assert newer != first["refresh_token"]
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    after_theft = await client.post("/api/v1/auth/refresh", json={"refresh_token": newer})
    assert after_theft.status_code == 401  # the whole family was revoked


async def test_logout_revokes_the_refresh_token(client: AsyncClient) -> None:
    first = await signup(client, "hank@example.com")
    assert (
        await client.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
    ).status_code == 204
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401


async def test_users_me_needs_a_valid_token(client: AsyncClient, settings: Settings) -> None:
    body = await signup(client, "ida@example.com")
    assert (await client.get("/api/v1/users/me")).status_code == 401
    expired = create_access_token(
        settings.require_secret_key(), str(body["user"]["id"]), timedelta(seconds=-5)
    )  # type: ignore[index]
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
    ).status_code == 401
    forged = create_access_token("f" * 40, str(body["user"]["id"]), timedelta(minutes=5))  # type: ignore[index]
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    other_org = {"Authorization": f"Bearer {body['access_token']}", "X-Org-Id": "org_notmine"}
    assert (await client.get("/api/v1/users/me", headers=other_org)).status_code == 404
