"""Suspending and reinstating organisations and users: the routes, the audit log, and every way in refused
(API keys, access tokens, refresh tokens, sign-in, dashboard sessions) until reinstated."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.audit.models import AuditEntry
from hutch.settings import Settings
from tests.factories import Account, create_account
from tests.web.test_dashboard import csrf_of


async def admin_and_customer(session: AsyncSession, settings: Settings) -> tuple[Account, Account]:
    admin = await create_account(session, settings, platform_admin=True, org_name="Operator")
    customer = await create_account(session, settings, org_name="Customer")
    return admin, customer


async def api_key(client: AsyncClient, account: Account) -> str:
    created = await client.post(
        "/api/v1/api-keys", json={"label": "k", "scopes": ["read", "chat"]}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


async def suspend(client: AsyncClient, admin: Account, kind: str, id_: str, reason: str) -> dict[str, Any]:
    answer = await client.post(
        f"/api/v1/admin/{kind}/{id_}/suspend", json={"reason": reason}, headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_suspended_org_is_refused_everywhere_until_reinstated(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin, customer = await admin_and_customer(session, settings)
    key = await api_key(client, customer)
    org_id = customer.org.id

    body = await suspend(client, admin, "orgs", org_id, "Unpaid invoices")
    assert body["id"] == org_id and body["reason"] == "Unpaid invoices" and body["suspended_at"]

    by_key = await client.get("/api/v1/agents", headers={"X-API-Key": key})
    assert by_key.status_code == 403 and "suspended" in by_key.json()["detail"]
    assert "Unpaid invoices" in by_key.json()["detail"]
    by_member = await client.get("/api/v1/agents", headers=customer.headers)
    assert by_member.status_code == 403 and "suspended" in by_member.json()["detail"]
    # the member is still themselves: they may read their profile (and export or delete their data)
    assert (await client.get("/api/v1/users/me", headers=customer.headers)).status_code == 200
    # the platform's admins keep their console, and see the suspension in the listing
    listed = await client.get(f"/api/v1/admin/orgs/{org_id}", headers=admin.headers)
    assert listed.status_code == 200 and listed.json()["suspension_reason"] == "Unpaid invoices"

    again = await client.post(
        f"/api/v1/admin/orgs/{org_id}/suspend", json={"reason": "Twice"}, headers=admin.headers
    )
    assert again.status_code == 409
    org = await session.get(Org, org_id, populate_existing=True)
    assert org is not None and org.suspension_reason == "Unpaid invoices"  # unchanged

    reinstated = await client.post(f"/api/v1/admin/orgs/{org_id}/reinstate", headers=admin.headers)
    assert reinstated.status_code == 200
    assert reinstated.json() == {"id": org_id, "suspended_at": None, "reason": None}
    assert (await client.get("/api/v1/agents", headers={"X-API-Key": key})).status_code == 200
    assert (await client.get("/api/v1/agents", headers=customer.headers)).status_code == 200

    actions = (
        await session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == org_id).order_by(AuditEntry.id)
        )
    ).all()
    assert actions == ["org_suspended", "org_reinstated"]
    log = await client.get(
        "/api/v1/admin/audit-log", params={"action": "org_suspended"}, headers=admin.headers
    )
    entry = log.json()["items"][0]
    assert entry["actor_user_id"] == admin.user.id and entry["details"] == {"reason": "Unpaid invoices"}
    assert [name for name, _ in client_jobs(client)] == ["runtimes.suspend_org", "runtimes.restore_org"]


def client_jobs(client: AsyncClient) -> list[tuple[str, dict[str, Any]]]:
    app: Any = client._transport.app  # type: ignore[attr-defined]
    return list(app.state.resources.jobs.deferred)


async def test_a_suspended_user_cannot_sign_in_or_use_their_sessions(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin, customer = await admin_and_customer(session, settings)
    email = customer.user.email
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": customer.password})
    refresh_token = login.json()["refresh_token"]
    form = await client.get("/login")
    signed_in = await client.post(
        "/login", data={"csrf": csrf_of(form), "email": email, "password": customer.password}
    )
    assert signed_in.status_code == 303

    await suspend(client, admin, "users", customer.user.id, "Spam")

    refused = await client.post("/api/v1/auth/login", json={"email": email, "password": customer.password})
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]
    assert "Spam" in refused.json()["detail"]
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "not-the-password"})
    assert wrong.status_code == 401  # a wrong password says nothing about the account
    token = await client.get("/api/v1/users/me", headers=customer.headers)
    assert token.status_code == 403 and "suspended" in token.json()["detail"]
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 403
    dashboard = await client.get("/app")
    assert dashboard.status_code == 403 and "suspended" in dashboard.text
    form = await client.get("/login")
    web_login = await client.post(
        "/login", data={"csrf": csrf_of(form), "email": email, "password": customer.password}
    )
    assert web_login.status_code == 403 and "suspended" in web_login.text

    reinstated = await client.post(f"/api/v1/admin/users/{customer.user.id}/reinstate", headers=admin.headers)
    assert reinstated.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=customer.headers)).status_code == 200
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    ).status_code == 200
    again = await client.get("/app")  # the same browser session works again
    assert again.status_code in (200, 303) and "/login" not in again.headers.get("location", "")


async def test_members_of_a_suspended_org_see_why_in_the_dashboard(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin, customer = await admin_and_customer(session, settings)
    await suspend(client, admin, "orgs", customer.org.id, "Terms of service breach")
    form = await client.get("/login")
    signed_in = await client.post(
        "/login",
        data={"csrf": csrf_of(form), "email": customer.user.email, "password": customer.password},
    )
    assert signed_in.status_code == 303
    shown = await client.get(signed_in.headers["location"])
    assert shown.status_code == 403
    assert "suspended" in shown.text and "Terms of service breach" in shown.text


async def test_bad_suspensions_are_refused_and_change_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin, customer = await admin_and_customer(session, settings)
    org_url = f"/api/v1/admin/orgs/{customer.org.id}"
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}):
        assert (await client.post(f"{org_url}/suspend", json=body, headers=admin.headers)).status_code == 422
    missing = await client.post(
        "/api/v1/admin/orgs/org_missing/suspend", json={"reason": "x"}, headers=admin.headers
    )
    assert missing.status_code == 404
    assert (await client.post(f"{org_url}/reinstate", headers=admin.headers)).status_code == 409
    assert (
        await client.post(f"{org_url}/suspend", json={"reason": "x"}, headers=customer.headers)
    ).status_code == 403
    myself = await client.post(
        f"/api/v1/admin/users/{admin.user.id}/suspend", json={"reason": "oops"}, headers=admin.headers
    )
    assert myself.status_code == 409
    missing_user = await client.post("/api/v1/admin/users/usr_missing/reinstate", headers=admin.headers)
    assert missing_user.status_code == 404
    org = await session.get(Org, customer.org.id, populate_existing=True)
    user = await session.get(User, admin.user.id, populate_existing=True)
    assert org is not None and org.suspended_at is None
    assert user is not None and user.suspended_at is None
    audited = await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("%suspend%")))
    assert audited.all() == []
