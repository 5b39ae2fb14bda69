from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.settings import Settings
from tests.factories import create_account


async def test_platform_admins_list_the_audit_log_and_others_get_403(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    member = await create_account(session, settings)
    await client.post("/api/v1/api-keys", json={"label": "k"}, headers=member.headers)
    await client.post("/api/v1/auth/login", json={"email": member.user.email, "password": "wrong-password"})

    page = await client.get("/api/v1/admin/audit-log", headers=admin.headers)
    assert page.status_code == 200
    actions = [item["action"] for item in page.json()["items"]]
    assert actions[:2] == ["login_failed", "api_key_created"]
    by_org = await client.get(f"/api/v1/admin/audit-log?org_id={member.org.id}", headers=admin.headers)
    assert [i["action"] for i in by_org.json()["items"]] == ["api_key_created"]
    assert by_org.json()["total"] == 1

    assert (await client.get("/api/v1/admin/audit-log", headers=member.headers)).status_code == 403
    assert (await client.get("/api/v1/admin/audit-log")).status_code == 401
