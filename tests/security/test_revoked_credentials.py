"""A refresh token or an API key still working after rotation or revocation, replayed: every one is
refused at once, by every way in (Authorization and X-API-Key, the API and the OpenAI-compatible routes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.models import ApiKey

PASSWORD = "first-password-1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def test_refresh_token_or_api_key_after_rotation_or_revocation(
    client: AsyncClient, session: AsyncSession
) -> None:
    signup = await client.post(
        "/api/v1/auth/signup", json={"email": "rotated@example.com", "password": PASSWORD}
    )
    first = signup.json()
    headers = {"Authorization": f"Bearer {first['access_token']}"}

    # A refresh token works once; the one it was rotated from, presented again, ends the whole family
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    replayed = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replayed.status_code == 401
    after_replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after_replay.status_code == 401  # the thief's copy and the owner's both stop

    # Logging out revokes the refresh token given
    login = (
        await client.post("/api/v1/auth/login", json={"email": "rotated@example.com", "password": PASSWORD})
    ).json()
    assert (
        await client.post("/api/v1/auth/logout", json={"refresh_token": login["refresh_token"]})
    ).status_code == 204
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    ).status_code == 401

    # A password change ends every other session: API refresh tokens and the dashboard's cookie sessions
    other = (
        await client.post("/api/v1/auth/login", json={"email": "rotated@example.com", "password": PASSWORD})
    ).json()
    form = await client.get("/login")
    csrf = CSRF.search(form.text)
    assert csrf is not None
    await client.post(
        "/login", data={"csrf": csrf.group(1), "email": "rotated@example.com", "password": PASSWORD}
    )
    assert (await client.get("/app/agents")).status_code == 200
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "second-password-2"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 401
    dashboard = await client.get("/app/agents")
    assert dashboard.status_code == 303 and dashboard.headers["location"].startswith("/login")
    headers = {"Authorization": f"Bearer {changed.json()['access_token']}"}

    # An API key, revoked or expired, answers 401 at once on every route it served, by both headers
    created = (await client.post("/api/v1/api-keys", json={"label": "ci"}, headers=headers)).json()
    key = created["key"]
    ways_in = ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"})
    for way in ways_in:
        assert (await client.get("/api/v1/agents", headers=way)).status_code == 200
    assert (await client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers)).status_code == 204
    for way in ways_in:
        for path in ("/api/v1/agents", "/v1/models", "/api/v1/api-keys/current"):
            assert (await client.get(path, headers=way)).status_code == 401, (path, way)
        completion = await client.post(
            "/v1/chat/completions",
            json={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
            headers=way,
        )
        assert completion.status_code == 401
    assert (
        await client.patch(f"/api/v1/api-keys/{created['id']}", json={"label": "again"}, headers=headers)
    ).status_code == 409

    expiring = (await client.post("/api/v1/api-keys", json={"label": "soon"}, headers=headers)).json()
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == expiring["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    assert (await client.get("/api/v1/agents", headers={"X-API-Key": expiring["key"]})).status_code == 401
