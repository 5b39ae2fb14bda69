"""The admin console's numbers and lists, checked against a small platform built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, OrgRole, User
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.models import BillingAccount, RevenueEvent, SubscriptionStatus
from hutch.channels.models import ChannelUsageDaily
from hutch.channels.voice.models import VoiceSession, VoiceStatus
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus
from hutch.settings import Settings
from hutch.turns import flow as chat_module
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


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
    alerts_uow = UnitOfWork(session)
    await raise_alert(alerts_uow, "runtime_capacity", Severity.CRITICAL, "No room", "first")
    await raise_alert(alerts_uow, "runtime_capacity", Severity.CRITICAL, "No room", "second")
    assert [name for name, _, _ in alerts_uow.pending_jobs] == ["admin.deliver_alert"]  # told once
    await session.commit()

    stats = (await client.get("/api/v1/admin/stats", headers=admin.headers)).json()
    assert (stats["users"], stats["orgs"], stats["agents"]) == (4, 3, 2)
    assert (stats["conversations"], stats["messages"], stats["documents"]) == (1, 4, 1)
    assert (stats["active_users_7d"], stats["active_users_30d"]) == (2, 3)  # the admin asking, too
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


async def test_revenue_and_usage_over_a_range_in_a_time_zone(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, email="root@example.com", platform_admin=True)
    a = await create_account(session, settings, org_name="A")
    b = await create_account(session, settings, org_name="B")

    def paid(org: Org, kind: str, cents: int, plan: str | None, at: datetime) -> RevenueEvent:
        return RevenueEvent(
            id=new_id("rev"), org_id=org.id, source=new_id("src"), kind=kind, amount_cents=cents,
            currency="usd", plan=plan, package="credits-10" if kind == "purchase" else None, occurred_at=at,
        )  # fmt: skip

    session.add_all(
        [
            # 00:30 on the 11th in Paris, still the 10th in UTC
            paid(a.org, "subscription", 1900, "starter", datetime(2026, 11, 10, 23, 30, tzinfo=UTC)),
            paid(a.org, "purchase", 1000, None, datetime(2026, 11, 12, 10, 0, tzinfo=UTC)),
            paid(a.org, "subscription", 4900, "pro", datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
            BillingAccount(
                org_id=b.org.id,
                status=SubscriptionStatus.CANCELED,
                subscribed_plan="starter",
                stripe_state_at=datetime(2026, 11, 15, 12, 0, tzinfo=UTC),
            ),
        ]
    )
    await session.commit()
    url = "/api/v1/admin/analytics/revenue?from=2026-11-11&to=2026-11-20"
    paris = (await client.get(url + "&tz=Europe/Paris", headers=admin.headers)).json()
    assert paris["revenue_cents"] == 1900 + 1000 + 4900 and paris["transactions"] == 3
    assert paris["average_transaction_cents"] == 2600
    purchases = [k for k in paris["by_kind"] if k["kind"] == "purchase"]
    assert purchases == [
        {"kind": "purchase", "plan": None, "package": "credits-10", "revenue_cents": 1000, "transactions": 1}
    ]
    assert [(d["day"], d["revenue_cents"]) for d in paris["daily"]] == [
        ("2026-11-11", 1900),
        ("2026-11-12", 1000),
        ("2026-11-20", 4900),
    ]
    assert paris["mrr_movement_cents"] == {
        "new": 1900,
        "expansion": 9900 - 1900,  # plan prices, Starter to Pro (whatever that month's invoice came to)
        "contraction": 0,
        "churn": 1900,
        "net": 1900 + 8000 - 1900,
    }
    utc = (await client.get(url + "&tz=UTC", headers=admin.headers)).json()
    assert utc["revenue_cents"] == 1000 + 4900  # the first payment was on the 10th in UTC
    bad = await client.get(url + "&tz=Mars/Olympus", headers=admin.headers)
    assert bad.status_code == 400
    assert (
        await client.get("/api/v1/admin/analytics/revenue?from=2026-11-11", headers=admin.headers)
    ).status_code == 400

    agent = (await client.post("/api/v1/agents", json={"name": "Talker"}, headers=a.headers)).json()
    await client.post(f"/api/v1/agents/{agent['id']}/chat", json={"message": "hello"}, headers=a.headers)
    session.add(
        VoiceSession(
            id=new_id("vs"),
            org_id=a.org.id,
            agent_id=agent["id"],
            identity="user:x",
            room=new_id("room"),
            status=VoiceStatus.ENDED,
            expires_at=datetime.now(UTC),
            started_at=datetime.now(UTC),
            seconds=600,
        )
    )
    await session.commit()
    used = (await client.get("/api/v1/admin/analytics/usage?days=1", headers=admin.headers)).json()
    assert used["sessions"] == 1 and used["messages_by_channel"] == {"api": 2}
    assert used["models_by_provider"][0]["provider"] == agent["model"].split("/")[0]
    assert used["voice"] == {"sessions": 1, "hours": 0.17, "average_session_minutes": 10.0}

    mine = (await client.get("/api/v1/usage?days=7", headers=a.headers)).json()
    [today] = mine["daily"]
    assert today["messages"] == 1 and today["input_tokens"] > 0
    assert (await client.get("/api/v1/usage?days=0", headers=a.headers)).status_code == 422


async def test_margins_per_org_with_an_alert_for_orgs_losing_money(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Any
) -> None:
    admin = await create_account(session, settings, email="root@example.com", platform_admin=True)
    a = await create_account(session, settings, org_name="Profitable")
    b = await create_account(session, settings, org_name="Costly")
    now = datetime.now(UTC)
    host = RuntimeHost(
        id=new_id("rh"),
        name="paid-host",
        driver="docker",
        address="tcp://x",
        max_runtimes=5,
        hourly_cost_cents=5,
    )
    session.add(host)
    for account in (a, b):
        await client.post("/api/v1/agents", json={"name": "Worker"}, headers=account.headers)
    agents = {
        acc.org.id: (await client.get("/api/v1/agents", headers=acc.headers)).json()["items"][0]["id"]
        for acc in (a, b)
    }

    def answer(org_id: str, channel: str, cost: int, byok: bool = False) -> list[Any]:
        conversation = Conversation(
            id=new_id("cnv"),
            org_id=org_id,
            agent_id=agents[org_id],
            channel=channel,
            end_user=new_id("u"),
            message_count=1,
            closed_at=now,
        )
        message = Message(
            id=new_id("msg"),
            org_id=org_id,
            conversation_id=conversation.id,
            channel=channel,
            seq=0,
            role=MessageRole.ASSISTANT,
            content="x",
            model="openai/gpt-4o-mini",
            cost_micro_usd=cost,
            byok=byok,
            status=MessageStatus.OK,
        )
        return [conversation, message]

    await session.flush()
    session.add_all(
        [
            RevenueEvent(
                id=new_id("rev"),
                org_id=a.org.id,
                source=new_id("s"),
                kind="subscription",
                amount_cents=1900,
                currency="usd",
                plan="starter",
                occurred_at=now,
            ),
            *answer(a.org.id, "whatsapp", 2_500_000),
            *answer(a.org.id, "api", 9_000_000, byok=True),  # the org's own key: not the operator's cost
            *answer(b.org.id, "api", 3_000_000),
            Runtime(
                id=new_id("rt"),
                org_id=a.org.id,
                agent_id=agents[a.org.id],
                host_id=host.id,
                driver="docker",
                status=RuntimeStatus.READY,
                gateway_token_encrypted="x",
                ready_at=now - timedelta(hours=10),
            ),
            ChannelUsageDaily(
                agent_id=agents[a.org.id],
                channel="whatsapp",
                day=now.date(),
                org_id=a.org.id,
                inbound=100,
                outbound=100,
            ),
        ]
    )
    await session.commit()

    resources.settings.whatsapp_message_cost_micro_usd = 5_000  # half a cent per message sent
    # Two calendar days: the runtime's ten hours fall inside them at any time of day (not always in today).
    report = (await client.get("/api/v1/admin/analytics/margin?days=2", headers=admin.headers)).json()
    costly, profitable = report["orgs"]
    assert (costly["name"], costly["margin_cents"], costly["model_cost_cents"]) == ("Costly", -300, 300)
    assert profitable == {
        "org_id": a.org.id,
        "name": "Profitable",
        "revenue_cents": 1900,
        "model_cost_cents": 250,
        "runtime_cost_cents": 50,  # 10 hours at 5 cents
        "messaging_cost_cents": 50,  # 100 WhatsApp messages at half a cent
        "margin_cents": 1900 - 250 - 50 - 50,
    }
    assert report["cost_by_channel_cents"] == {"api": 300, "whatsapp": 300}

    jobs = resources.jobs
    for _ in range(2):
        losing = await jobs.execute(
            "admin.check_margins", {"timestamp": 0}, job_id=0, attempt=0, resources=jobs.worker_resources
        )
        assert losing == 1
    [alert] = (await client.get("/api/v1/admin/alerts", headers=admin.headers)).json()["items"]
    assert alert["kind"] == "negative_margin" and alert["org_id"] == b.org.id and alert["occurrences"] == 2


async def test_sorting_and_the_reports_of_one_org_and_one_user(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, email="root@example.com", platform_admin=True)
    zed = await create_account(session, settings, email="zed@example.com", org_name="Zed Org")
    amy = await create_account(session, settings, email="amy@example.com", org_name="Amy Org")
    await create_account(session, settings, email="pat@example.com", org=zed.org, role=OrgRole.MEMBER)
    await client.post("/api/v1/agents", json={"name": "Zed's agent"}, headers=zed.headers)

    by_email = (await client.get("/api/v1/admin/users?sort=email", headers=admin.headers)).json()["items"]
    assert [u["email"] for u in by_email] == sorted(u["email"] for u in by_email)
    by_members = (await client.get("/api/v1/admin/orgs?sort=members", headers=admin.headers)).json()["items"]
    assert by_members[0]["name"] == "Zed Org"
    bad = await client.get("/api/v1/admin/orgs?sort=favourite", headers=admin.headers)
    assert bad.status_code == 422

    report = (await client.get(f"/api/v1/admin/orgs/{zed.org.id}", headers=admin.headers)).json()
    assert [m["email"] for m in report["members"]] == ["pat@example.com", "zed@example.com"]
    assert [a["name"] for a in report["agents"]] == ["Zed's agent"]
    assert "messages_this_month" in report["usage_this_month"]
    person = (await client.get(f"/api/v1/admin/users/{amy.user.id}", headers=admin.headers)).json()
    assert person["email"] == "amy@example.com"
    assert [(m["name"], m["role"]) for m in person["memberships"]] == [("Amy Org", "owner")]
    assert (await client.get("/api/v1/admin/orgs/org_nope", headers=admin.headers)).status_code == 404
    assert (await client.get("/api/v1/admin/users/usr_nope", headers=admin.headers)).status_code == 404


async def test_a_provider_failing_often_raises_an_alert(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    fake_llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_module, "PROVIDER_FAILURES_ALERT", 1)
    admin = await create_account(session, settings, email="root@example.com", platform_admin=True)
    owner = await create_account(session, settings)
    body = {"name": "Fragile", "model": "openai/gpt-4o-mini"}
    agent = (await client.post("/api/v1/agents", json=body, headers=owner.headers)).json()
    for _ in range(2):
        fake_llm.script(ScriptedReply(status=500, error="upstream down"))
        answer = await client.post(
            f"/api/v1/agents/{agent['id']}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert answer.json()["message"]["status"] == "failed"
    alerts = (await client.get("/api/v1/admin/alerts", headers=admin.headers)).json()["items"]
    assert [a["kind"] for a in alerts] == ["provider_failures"] and "openai" in alerts[0]["subject"]


async def test_signed_in_use_counts_as_activity(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, email="root@example.com", platform_admin=True)
    await client.get("/api/v1/agents", headers=admin.headers)
    stats = (await client.get("/api/v1/admin/stats", headers=admin.headers)).json()
    assert stats["active_users_7d"] == 1
