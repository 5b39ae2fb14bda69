"""``hutch demo``'s data: made through the services, so balances, counters and charts agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import User
from hutch.admin.demo import ADMIN_EMAIL, DemoFiller
from hutch.billing.models import Balance, LedgerEntry, LedgerUnit, RevenueEvent, UsageDaily, UsageMonthly
from hutch.conversations.models import Message, MessageRole
from hutch.db.engine import UnitOfWork
from hutch.resources import Resources


async def test_demo_data_is_consistent_and_spread_over_90_days(
    session: AsyncSession, resources: Resources
) -> None:
    steps: list[str] = []
    report = await DemoFiller(UnitOfWork(session, resources.jobs), resources).fill(3, steps.append)
    await session.flush()
    assert report.orgs == 3 and report.agents >= 3 and report.messages > 0 and report.alerts > 0
    assert report.logins[0] == f"{ADMIN_EMAIL} (platform admin)" and steps[-1] == "alerts"
    admin = await session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    assert admin is not None and admin.is_platform_admin
    demo_owners = (await session.scalars(select(User).where(User.email.like("owner@%")))).all()
    assert not any(u.is_platform_admin for u in demo_owners)

    oldest = await session.scalar(select(func.min(Message.created_at)))
    assert oldest is not None and oldest < datetime.now(UTC) - timedelta(days=3)
    asked = await session.scalar(select(func.count()).where(Message.role == MessageRole.USER))
    assert await session.scalar(select(func.sum(UsageDaily.messages))) == asked
    assert await session.scalar(select(func.sum(UsageMonthly.messages))) == asked
    for balance in (await session.scalars(select(Balance))).all():
        for unit, value in (
            (LedgerUnit.CREDITS, balance.credits_cents),
            (LedgerUnit.SECONDS, balance.seconds),
        ):
            total = await session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.org_id == balance.org_id, LedgerEntry.unit == unit
                )
            )
            assert total == value >= 0
    assert await session.scalar(select(func.count()).select_from(RevenueEvent)) == report.payments
