"""The prepaid ledger never goes negative, balances equal their entries, and admins grant through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.audit.models import AuditEntry
from hutch.billing.ledger import InsufficientBalance, Ledger
from hutch.billing.models import LedgerKind, LedgerUnit
from hutch.billing.plans import PlanFileError, load_plans
from hutch.db.engine import Database, UnitOfWork
from hutch.notifications.models import OutboundEmail
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import LiveDeployment, RecordingJobQueue
from tests.factories import create_account


async def test_a_hundred_concurrent_spends_never_go_below_zero(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    org_id = owner.org.id
    # 100 tasks at once over 20 connections (what a few API processes hold): the rest queue for one.
    spenders = Database(live.resources.settings.database_url.get_secret_value(), pool_size=20, max_overflow=0)  # type: ignore[union-attr]
    sessionmaker = spenders.sessionmaker
    async with sessionmaker() as session:
        uow = UnitOfWork(session)
        await Ledger(uow).post(org_id, LedgerUnit.CREDITS, LedgerKind.GRANT, 250, description="seed")
        await session.commit()

    async def spend(n: int) -> bool:
        async with sessionmaker() as session:
            try:
                await Ledger(UnitOfWork(session)).post(
                    org_id, LedgerUnit.CREDITS, LedgerKind.SPEND, -7, reference=f"spend:{org_id}:{n}"
                )
            except InsufficientBalance:
                await session.rollback()
                return False
            await session.commit()
            return True

    try:
        outcomes = await asyncio.gather(*(spend(n) for n in range(100)))
    finally:
        await spenders.dispose()
    assert outcomes.count(True) == 35  # 35 x 7 = 245 of 250; a 36th would go below zero
    async with live.resources.database.sessionmaker() as session:
        ledger = Ledger(UnitOfWork(session))
        balance, sums = await ledger.balance(org_id), await ledger.sums(org_id)
        entries, total = await ledger.entries(org_id, 0, 200)
    assert balance.credits_cents == 5 == sums.credits_cents
    assert total == 36 and min(e.balance_after for e in entries) == 5


async def test_a_replayed_reference_counts_once(session: AsyncSession, settings: Settings) -> None:
    owner = await create_account(session, settings)
    ledger = Ledger(UnitOfWork(session))
    first = await ledger.post(
        owner.org.id, LedgerUnit.SECONDS, LedgerKind.PURCHASE, 3600, reference="cs_test_once"
    )
    again = await ledger.post(
        owner.org.id, LedgerUnit.SECONDS, LedgerKind.PURCHASE, 3600, reference="cs_test_once"
    )
    assert again.id == first.id
    assert (await ledger.balance(owner.org.id)).seconds == 3600
    with pytest.raises(InsufficientBalance):
        await ledger.post(owner.org.id, LedgerUnit.SECONDS, LedgerKind.SPEND, -3601)
    assert (await ledger.balance(owner.org.id)).seconds == 3600


async def test_low_balance_notice_once_per_crossing(session: AsyncSession, settings: Settings) -> None:
    owner = await create_account(session, settings)
    uow = UnitOfWork(session)
    ledger = Ledger(uow, low_balance_threshold_cents=200)
    org = owner.org.id
    await ledger.post(org, LedgerUnit.CREDITS, LedgerKind.GRANT, 500)
    await ledger.post(org, LedgerUnit.CREDITS, LedgerKind.SPEND, -350)  # 150: crossed
    await ledger.post(org, LedgerUnit.CREDITS, LedgerKind.SPEND, -50)  # still below: no second notice
    assert [name for name, _, _ in uow.pending_jobs] == ["billing.notify_low_balance"]
    await ledger.post(org, LedgerUnit.CREDITS, LedgerKind.GRANT, 300)  # 400: rearmed
    await ledger.post(org, LedgerUnit.CREDITS, LedgerKind.SPEND, -250)  # 150: crossed again
    assert [name for name, _, _ in uow.pending_jobs] == ["billing.notify_low_balance"] * 2


async def test_admins_grant_credits_and_time_and_assign_plans(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    owner = await create_account(session, settings)
    url = f"/api/v1/admin/orgs/{owner.org.id}"
    granted = await client.post(
        f"{url}/grants",
        json={"credits_cents": 1500, "seconds": 600, "reason": "launch"},
        headers=admin.headers,
    )
    assert granted.status_code == 201
    body = granted.json()
    assert (body["unit"], body["kind"], body["amount"]) == ("credits", "grant", 1500)
    assert [(e["unit"], e["amount"]) for e in body["entries"]] == [("credits", 1500), ("seconds", 600)]
    balance = await client.get("/api/v1/billing/balance", headers=owner.headers)
    assert balance.json() == {"credits_cents": 1500, "seconds": 600}
    audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "billing_grant"))).all()
    assert [a.target for a in audit] == [owner.org.id]

    for bad in ({"reason": "nothing"}, {"credits_cents": -5, "reason": "x"}, {"credits_cents": 5}):
        assert (await client.post(f"{url}/grants", json=bad, headers=admin.headers)).status_code == 422
    missing = await client.post(
        "/api/v1/admin/orgs/org_nope/grants", json={"credits_cents": 5, "reason": "x"}, headers=admin.headers
    )
    assert missing.status_code == 404

    assert (await client.put(f"{url}/plan", json={"plan": "gold"}, headers=admin.headers)).status_code == 400
    moved = await client.put(f"{url}/plan", json={"plan": "pro"}, headers=admin.headers)
    assert moved.json() == {"org_id": owner.org.id, "plan": "pro"}
    usage = await client.get("/api/v1/billing/usage", headers=owner.headers)
    assert usage.json()["plan"] == "pro"
    subscription = await client.get("/api/v1/billing/subscription", headers=owner.headers)
    assert subscription.json()["plan"] == "pro" and subscription.json()["status"] == "none"


async def test_plans_are_public_and_paid_ones_unavailable_without_stripe(client: AsyncClient) -> None:
    plans = (await client.get("/api/v1/billing/plans")).json()["items"]
    by_id = {p["id"]: p for p in plans}
    assert by_id["free"]["available"] is True and by_id["free"]["price_cents"] == 0
    assert by_id["starter"]["available"] is False  # no Stripe in these settings
    assert by_id["starter"]["trial_days"] == 2.0 and by_id["starter"]["trial_hours"] == 48
    assert by_id["tiny"]["limits"]["agents"] == 2


def test_the_builtin_plans_file_has_the_five_plans(settings: Settings) -> None:
    plans = load_plans(settings.model_copy(update={"plans_file": None}))
    assert [p.id for p in plans.plans] == ["free", "starter", "growth", "pro", "enterprise"]
    assert plans.plan("starter") is not None and plans.plan("starter").trial_hours == 48  # type: ignore[union-attr]
    assert {p.id for p in plans.packages} >= {"time-1h", "time-5h", "time-20h"}
    assert [p.includes for p in plans.plans] == [
        (),
        (),
        ("runtime",),
        ("runtime", "telegram_bot"),
        ("runtime", "telegram_bot"),
    ]
    assert plans.billing.past_due_grace_hours == 72


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("[[plans]\nid=", "Cannot read the plans file"),
        ('[[plans]]\nid = "pro"\nname = "Pro"\nprice_cents = 5\n', "must include 'free'"),
        (
            '[[plans]]\nid = "free"\nname = "Free"\nprice_cents = 0\n[plans.limits]\nagents = -1\n',
            'plans[0] (id "free").limits.agents',
        ),
        ('[[plans]]\nid = "free"\nname = "Free"\nprice_cents = 0\ncolour = "red"\n', "colour"),
        (
            '[[plans]]\nid = "free"\nname = "Free"\nprice_cents = 0\nincludes = ["runtime"]\n'
            "[plans.limits]\ndedicated_runtimes = 0\n",
            "includes 'runtime', but limits.dedicated_runtimes is 0",
        ),
        ('[[plans]]\nid = "free"\nname = "Free"\nprice_cents = 0\nincludes = ["pony"]\n', "includes"),
    ],
)
def test_a_bad_plans_file_is_refused_with_where_and_what(
    tmp_path: Path, settings: Settings, content: str | None, message: str
) -> None:
    path = tmp_path / "plans.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PlanFileError) as error:
        load_plans(settings.model_copy(update={"plans_file": path}))
    assert message in str(error.value) and str(path) in str(error.value)


async def test_the_low_balance_job_emails_the_owners(
    session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings, email="owner-low@example.com")
    await create_account(
        session, settings, org=owner.org, role=OrgRole.MEMBER, email="member-low@example.com"
    )
    uow = UnitOfWork(session, resources.jobs)
    ledger = Ledger(uow, low_balance_threshold_cents=200)
    await ledger.post(owner.org.id, LedgerUnit.CREDITS, LedgerKind.GRANT, 150)
    await uow.checkpoint()
    assert isinstance(resources.jobs, RecordingJobQueue)
    await resources.jobs.run_pending()
    emails = (await session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "low_balance"))).all()
    assert [e.to_address for e in emails] == ["owner-low@example.com"]
    assert "$1.50" in resources.secret_box.decrypt(emails[0].body_encrypted)
