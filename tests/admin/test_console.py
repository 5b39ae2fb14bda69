"""The admin console's numbers and lists, checked against a small platform built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, OrgRole, User
from hutch.admin.alerts import raise_alert
from hutch.admin.models import Severity
from hutch.billing.models import BillingAccount, SubscriptionStatus
from hutch.settings import Settings
from tests.factories import create_account


async def test_stats_lists_and_alerts(client: AsyncClient, session: AsyncSession, settings: Settings) -> None:
    admin = await create_account(
        session, settings, email="root@example.com", org_name="Operator", platform_admin=True
    )
    shop = await create_account(session, settings, email="ann@shop.example", org_name="Shop")
    await create_account(session, settings, email="bob@shop.example", org=shop.org, role=OrgRole.MEMBER)
    cafe = await create_account(session, settings, email="cid@cafe.example", org_name="Cafe")
    for name in ("Seller", "Helper"):
        await client.post("/api/v1/agents", json={"name": name}, headers=shop.headers)
    agents = (await client.get("/api/v1/agents", headers=shop.headers)).json()["items"]
    seller = next(a for a in agents if a["name"] == "Seller")
    for text in ("hi", "and again"):
        await client.post(f"/api/v1/agents/{seller['id']}/chat", json={"message": text}, headers=shop.headers)
    await client.post(
        f"/api/v1/agents/{seller['id']}/documents", json={"title": "Prices", "content": "Tea is 3 euros."},
        headers=shop.headers,
    )  # fmt: skip
    session.add_all(
        [
            BillingAccount(org_id=shop.org.id, status=SubscriptionStatus.ACTIVE, subscribed_plan="starter"),
            BillingAccount(org_id=cafe.org.id, status=SubscriptionStatus.TRIALING, subscribed_plan="starter"),
        ]
    )
    await session.execute(update(Org).where(Org.id == shop.org.id).values(plan="starter"))
    await session.execute(
        update(User)
        .where(User.id == shop.user.id)
        .values(last_active_at=datetime.now(UTC) - timedelta(days=10))
    )
    await session.execute(
        update(User).where(User.id == cafe.user.id).values(last_active_at=datetime.now(UTC))
    )
    await raise_alert(session, "runtime_capacity", Severity.CRITICAL, "No room", "first")
    await raise_alert(session, "runtime_capacity", Severity.CRITICAL, "No room", "second")
    await session.commit()

    stats = (await client.get("/api/v1/admin/stats", headers=admin.headers)).json()
    assert (stats["users"], stats["orgs"], stats["agents"]) == (4, 3, 2)
    assert (stats["conversations"], stats["messages"], stats["documents"]) == (1, 4, 1)
    assert (stats["active_users_7d"], stats["active_users_30d"]) == (1, 2)
    assert stats["mrr_cents"] == 1900  # the trial pays nothing yet
    assert stats["subscriptions"]["active"] == 1 and stats["subscriptions"]["trialing"] == 1
    assert stats["users_by_plan"] == {"free": 2, "starter": 2}

    users = (await client.get("/api/v1/admin/users?q=shop.example", headers=admin.headers)).json()
    assert users["total"] == 2
    ann = next(u for u in users["items"] if u["email"] == "ann@shop.example")
    assert (ann["plan"], ann["orgs"], ann["agents"], ann["messages_this_month"]) == ("starter", 1, 2, 2)
    page = (await client.get("/api/v1/admin/users?skip=3&limit=2", headers=admin.headers)).json()
    assert page["total"] == 4 and len(page["items"]) == 1  # the last page holds what is left

    orgs = (await client.get("/api/v1/admin/orgs?q=Shop", headers=admin.headers)).json()
    [org] = orgs["items"]
    assert (org["members"], org["agents"], org["subscription"], org["messages_this_month"]) == (
        2,
        2,
        "active",
        2,
    )

    listed = (await client.get("/api/v1/admin/agents?q=Seller", headers=admin.headers)).json()
    [agent] = listed["items"]
    assert (agent["org_name"], agent["conversations"], agent["documents"]) == ("Shop", 1, 1)

    alerts = (await client.get("/api/v1/admin/alerts", headers=admin.headers)).json()
    [alert] = alerts["items"]
    assert (alert["occurrences"], alert["message"]) == (2, "second")  # one alert, raised twice
    seen = await client.post(f"/api/v1/admin/alerts/{alert['id']}/acknowledge", headers=admin.headers)
    assert seen.status_code == 200 and seen.json()["acknowledged_at"] is not None
    assert (await client.get("/api/v1/admin/alerts", headers=admin.headers)).json()["total"] == 0
    everything = (await client.get("/api/v1/admin/alerts?open=false", headers=admin.headers)).json()
    assert everything["total"] == 1

    assert (await client.get("/api/v1/admin/stats", headers=shop.headers)).status_code == 403
    missing = await client.post("/api/v1/admin/alerts/alr_nope/acknowledge", headers=admin.headers)
    assert missing.status_code == 404
