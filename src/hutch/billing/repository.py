"""Every query on billing: usage counters and reservations, the prepaid ledger, the plans mirror, Stripe's
subscriptions, events and revenue, and what billing counts of other domains."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CTE, Label, column, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, User
from hutch.agents.models import Agent
from hutch.apikeys.budget import spend_change
from hutch.apikeys.repository import adjust_spend_sql
from hutch.billing.models import (
    Balance,
    BillingAccount,
    LedgerEntry,
    LedgerUnit,
    PlanRecord,
    RevenueEvent,
    StripeEvent,
    UsageDaily,
    UsageMonthly,
)
from hutch.billing.plans import Plan
from hutch.core.ids import new_id
from hutch.core.quota import month_start, utc_day
from hutch.core.quota_queries import reserve_statement
from hutch.db.carried import Carried, built_once
from hutch.knowledge.models import Document

# --- usage and quotas ---------------------------------------------------------------------------------


def _message_reservation() -> tuple[tuple[CTE, ...], tuple[Label[Any], ...]]:
    """The day's and the month's message reservations as CTEs, and their new counts (NULL: refused) as
    columns. Each CTE runs whatever the other does; when either is refused the caller raises, and the
    rollback takes back the one that succeeded."""
    ctes = tuple(
        text(
            reserve_statement(
                table,
                ("org_id", period),
                "messages",
                limit=f"reserve_{period}_limit",
                keys={"org_id": "reserve_org_id", period: f"reserve_{period}"},
            )
        )
        .columns(column("messages"))
        .cte(f"{period}_reserved")
        for table, period in (("usage_daily", "day"), ("usage_monthly", "month"))
    )
    columns = tuple(
        select(cte.c.messages).scalar_subquery().label(f"reserved_{period}")
        for cte, period in zip(ctes, ("day", "month"), strict=True)
    )
    return ctes, columns


# The day's usage counters, as a CTE other statements carry (see ``Carried``). Parameters are named
# ``usage_*``, apart from the columns of the inserts that carry them.
_USAGE_COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cost_micro_usd",
    "documents",
    "voice_seconds",
    "tool_calls",
    "tool_cost_micro_usd",
    "transcription_seconds",
    "transcription_cost_micro_usd",
)
_USAGE_ADDED = (
    text(
        # Built once from the constant column names above: no input reaches this text.
        f"INSERT INTO usage_daily (org_id, day, messages, {', '.join(_USAGE_COUNTERS)}) "  # noqa: S608
        f"VALUES (:usage_org_id, :usage_day, 0, {', '.join(f':usage_{c}' for c in _USAGE_COUNTERS)}) "
        "ON CONFLICT (org_id, day) DO UPDATE SET "
        + ", ".join(f"{c} = usage_daily.{c} + EXCLUDED.{c}" for c in _USAGE_COUNTERS)
        + " RETURNING org_id"
    )
    .columns()
    .cte("usage_added")
)
# An API key's spend, written after the usage row: every statement locks the two in that order.
_KEY_SPEND_ADDED = text(adjust_spend_sql(after="usage_added")).columns().cte("key_spend_added")
_CARRY = text(
    "UPDATE balances SET uncharged_micro_usd = uncharged_micro_usd + :cost WHERE org_id = :org_id "
    "RETURNING uncharged_micro_usd, credits_cents"
)
_TAKE_CARRY = text("UPDATE balances SET uncharged_micro_usd = :left WHERE org_id = :org_id")


@dataclass(frozen=True)
class UsageCounts:
    """What to add to an org's usage of the day."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro_usd: int = 0  # everything it cost: the model's tokens, tools and transcriptions
    documents: int = 0
    voice_seconds: int = 0
    tool_calls: int = 0
    tool_cost_micro_usd: int = 0
    transcription_seconds: int = 0
    transcription_cost_micro_usd: int = 0


class QuotaRepository:
    """The org's plan row, its usage counters and the uncharged fractions of its pay-per-use costs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def org(self, org_id: str) -> Org | None:
        # By primary key: a row the unit of work already holds (read for the channel's language, say) costs
        # no round trip.
        return await self.session.get(Org, org_id)

    @staticmethod
    def message_reservation(
        org_id: str, now: datetime, day_limit: int | None, month_limit: int | None
    ) -> Carried:
        """One message on the day's and the month's counts, within the limits (None: no limit), for a
        statement to carry; its columns ``reserved_day`` and ``reserved_month`` are the new counts, NULL when
        a limit refused it."""
        ctes, columns = built_once(("message reservation",), _message_reservation)
        params = {  # named apart from the columns of the inserts that carry them (see ``Carried``)
            "reserve_org_id": org_id,
            "reserve_day": utc_day(now),
            "reserve_month": month_start(now),
            "amount": 1,
            "reserve_day_limit": day_limit,
            "reserve_month_limit": month_limit,
        }
        return Carried(ctes, columns, params)

    @staticmethod
    def usage_added(
        org_id: str, now: datetime, counts: UsageCounts, charged_key: tuple[str, int] | None
    ) -> Carried:
        """Additions to the org's usage of the day; ``charged_key`` (key id, cents) adds to its spend too."""
        values: dict[str, object] = {"usage_org_id": org_id, "usage_day": utc_day(now)}
        values |= {f"usage_{name}": getattr(counts, name) for name in _USAGE_COUNTERS}
        if charged_key is None:
            return Carried((_USAGE_ADDED,), params=values)
        return Carried((_USAGE_ADDED, _KEY_SPEND_ADDED), params=values | spend_change(*charged_key, now))

    async def write(self, carried: Carried) -> dict[str, Any]:
        """Counters or a reservation no other statement carries, run on their own; their columns' values."""
        return await carried.execute(self.session)

    async def credits(self, org_id: str) -> int:
        value = await self.session.scalar(select(Balance.credits_cents).where(Balance.org_id == org_id))
        return int(value or 0)

    async def add_uncharged(self, org_id: str, cost_micro_usd: int) -> tuple[int, int]:
        """Add a cost to what is not charged yet; (uncharged micro-USD, credits in cents) after it."""
        row = (await self.session.execute(_CARRY, {"org_id": org_id, "cost": cost_micro_usd})).one()
        return int(row.uncharged_micro_usd), int(row.credits_cents)

    async def set_uncharged(self, org_id: str, left_micro_usd: int) -> None:
        await self.session.execute(_TAKE_CARRY, {"org_id": org_id, "left": left_micro_usd})

    async def tool_calls_since(self, org_id: str, month: date) -> int:
        used = await self.session.scalar(
            select(func.coalesce(func.sum(UsageDaily.tool_calls), 0)).where(
                UsageDaily.org_id == org_id, UsageDaily.day >= month
            )
        )
        return int(used or 0)

    async def usage(self, org_id: str, month: date, today: date) -> dict[str, int]:
        """The org's messages this month and today, and this month's tokens, cost, voice seconds, tool
        calls and transcriptions."""
        totals = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(UsageDaily.input_tokens), 0),
                    func.coalesce(func.sum(UsageDaily.output_tokens), 0),
                    func.coalesce(func.sum(UsageDaily.cost_micro_usd), 0),
                    func.coalesce(func.sum(UsageDaily.voice_seconds), 0),
                    func.coalesce(func.sum(UsageDaily.tool_calls), 0),
                    func.coalesce(func.sum(UsageDaily.tool_cost_micro_usd), 0),
                    func.coalesce(func.sum(UsageDaily.transcription_seconds), 0),
                    func.coalesce(func.sum(UsageDaily.transcription_cost_micro_usd), 0),
                ).where(UsageDaily.org_id == org_id, UsageDaily.day >= month)
            )
        ).one()
        messages_month = await self.session.scalar(
            select(UsageMonthly.messages).where(UsageMonthly.org_id == org_id, UsageMonthly.month == month)
        )
        messages_today = await self.session.scalar(
            select(UsageDaily.messages).where(UsageDaily.org_id == org_id, UsageDaily.day == today)
        )
        return {
            "messages_this_month": int(messages_month or 0),
            "messages_today": int(messages_today or 0),
            "input_tokens_this_month": int(totals[0]),
            "output_tokens_this_month": int(totals[1]),
            "cost_micro_usd_this_month": int(totals[2]),
            "voice_seconds_this_month": int(totals[3]),
            "tool_calls_this_month": int(totals[4]),
            "tool_cost_micro_usd_this_month": int(totals[5]),
            "transcription_seconds_this_month": int(totals[6]),
            "transcription_cost_micro_usd_this_month": int(totals[7]),
        }


# --- the prepaid ledger -------------------------------------------------------------------------------

_ENSURE = text("INSERT INTO balances (org_id) VALUES (:org_id) ON CONFLICT (org_id) DO NOTHING")
_MOVE = text(
    "UPDATE balances SET credits_cents = credits_cents + :credits, seconds = seconds + :seconds, "
    "updated_at = now() "
    "WHERE org_id = :org_id AND credits_cents + :credits >= 0 AND seconds + :seconds >= 0 "
    "RETURNING credits_cents, seconds, low_credits_notified"
)
_LOW_CREDITS_NOTIFIED = text("UPDATE balances SET low_credits_notified = :below WHERE org_id = :org_id")


@dataclass(frozen=True)
class MovedBalance:
    """The org's balance after an entry moved it, and whether its owners heard credits were low."""

    credits_cents: int
    seconds: int
    low_credits_notified: bool


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure_balance(self, org_id: str) -> None:
        await self.session.execute(_ENSURE, {"org_id": org_id})

    async def move(self, org_id: str, credits: int, seconds: int) -> MovedBalance | None:
        """Add to the org's balance (locking its row) unless it would go below zero: then None."""
        row = (
            await self.session.execute(_MOVE, {"org_id": org_id, "credits": credits, "seconds": seconds})
        ).first()
        if row is None:
            return None
        return MovedBalance(int(row.credits_cents), int(row.seconds), bool(row.low_credits_notified))

    async def mark_low_credits(self, org_id: str, below: bool) -> None:
        await self.session.execute(_LOW_CREDITS_NOTIFIED, {"below": below, "org_id": org_id})

    async def by_reference(self, reference: str) -> LedgerEntry | None:
        return (
            await self.session.execute(select(LedgerEntry).where(LedgerEntry.reference == reference))
        ).scalar_one_or_none()

    async def entries(self, org_id: str, skip: int, limit: int) -> tuple[list[LedgerEntry], int]:
        """A page of the org's entries, newest first, and how many there are."""
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.org_id == org_id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .offset(skip)
            .limit(limit)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.org_id == org_id)
        )
        return list((await self.session.scalars(stmt)).all()), int(total or 0)

    async def sums(self, org_id: str) -> dict[LedgerUnit, int]:
        """The org's entries added up, per unit (units without entries left out)."""
        rows = await self.session.execute(
            select(LedgerEntry.unit, func.coalesce(func.sum(LedgerEntry.amount), 0))
            .where(LedgerEntry.org_id == org_id)
            .group_by(LedgerEntry.unit)
        )
        return {unit: int(total) for unit, total in rows.all()}


# --- plans, orgs and what they use ---------------------------------------------------------------------


class PlanRecordRepository:
    """The ``plans`` table: the plans file as last loaded."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, plan: Plan) -> None:
        """Write the plan as the file has it, active."""
        values: dict[str, Any] = {
            "name": plan.name,
            "price_cents": plan.price_cents,
            "interval": plan.interval,
            "trial_hours": plan.trial_hours,
            "pay_per_use": plan.pay_per_use,
            "limits": plan.limits.model_dump(),
            "active": True,
            "updated_at": func.now(),
        }
        stmt = insert(PlanRecord).values(id=plan.id, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[PlanRecord.id], set_=values))

    async def deactivate_others(self, kept: Iterable[str]) -> None:
        """Mark inactive every plan but those named in ``kept``."""
        await self.session.execute(
            update(PlanRecord)
            .where(PlanRecord.id.not_in(list(kept)))
            .values(active=False, updated_at=func.now())
        )


class BillingRepository:
    """What billing reads of orgs, their members and what they use (agents, documents)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_org_of_email(self, email: str) -> Org | None:
        """The first org of the user with this email (emails are stored lower case)."""
        return await self.session.scalar(
            select(Org)
            .join(Membership, Membership.org_id == Org.id)
            .join(User, User.id == Membership.user_id)
            .where(User.email == email)
            .order_by(Membership.created_at, Org.id)
            .limit(1)
        )

    async def plan_and_account(self, org_id: str) -> tuple[str | None, BillingAccount | None]:
        """The org's plan (None without the org) and its billing account, read together: a webhook changes
        both in one transaction, and two reads could each see a different side of it."""
        row = (
            await self.session.execute(
                select(Org.plan, BillingAccount)
                .select_from(Org)
                .outerjoin(BillingAccount, BillingAccount.org_id == Org.id)
                .where(Org.id == org_id)
            )
        ).first()
        return (row[0], row[1]) if row is not None else (None, None)

    async def email_of_user(self, user_id: str) -> str | None:
        return await self.session.scalar(select(User.email).where(User.id == user_id))

    async def count_agents(self, org_id: str, *, placement: str | None = None) -> int:
        """The org's agents (those with this placement, given one)."""
        stmt = select(func.count()).select_from(Agent).where(Agent.org_id == org_id)
        if placement is not None:
            stmt = stmt.where(Agent.placement == placement)
        return int(await self.session.scalar(stmt) or 0)

    async def documents_per_agent(self, org_id: str) -> list[tuple[str, int, int]]:
        """(agent id, documents, bytes) of each of the org's agents with documents."""
        rows = await self.session.execute(
            select(Document.agent_id, func.count(), func.coalesce(func.sum(Document.size_bytes), 0))
            .where(Document.org_id == org_id)
            .group_by(Document.agent_id)
        )
        return [(agent_id, int(count), int(size)) for agent_id, count, size in rows.all()]


# --- Stripe: subscriptions, events, revenue ----------------------------------------------------------


class SubscriptionRepository:
    """Billing accounts found by their Stripe customer, and the Stripe events applied so far."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def account_for_customer(self, customer_id: str) -> BillingAccount | None:
        """The account of this Stripe customer, locked until the transaction ends."""
        return (
            await self.session.execute(
                select(BillingAccount)
                .where(BillingAccount.stripe_customer_id == customer_id)
                .with_for_update()
            )
        ).scalar_one_or_none()

    async def record_event(self, event_id: str, kind: str, created: datetime) -> bool:
        """Store the event's id as handled; False when it was stored already (a replay)."""
        stored = await self.session.execute(
            insert(StripeEvent)
            .values(id=event_id, type=kind, created=created, handled=True)
            .on_conflict_do_nothing(index_elements=[StripeEvent.id])
            .returning(StripeEvent.id)
        )
        return stored.first() is not None


class RevenueRepository:
    """What orgs paid (and were refunded): one row per source, written once."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        org_id: str,
        source: str,
        kind: str,
        amount_cents: int,
        currency: str,
        plan: str | None,
        package: str | None,
    ) -> None:
        """Record a payment or refund, unless one with this ``source`` is recorded already."""
        await self.session.execute(
            insert(RevenueEvent)
            .values(
                id=new_id("rev"),
                org_id=org_id,
                source=source,
                kind=kind,
                amount_cents=amount_cents,
                currency=currency,
                plan=plan,
                package=package,
                occurred_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=[RevenueEvent.source])
        )

    async def total_from(self, source_prefix: str) -> int:
        """The amounts recorded from sources starting with ``source_prefix``, added up."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(RevenueEvent.amount_cents), 0)).where(
                RevenueEvent.source.startswith(source_prefix)
            )
        )
        return int(total or 0)

    async def of_org(self, org_id: str, limit: int) -> list[RevenueEvent]:
        """What the org paid (subscriptions and purchases), newest first."""
        stmt = (
            select(RevenueEvent)
            .where(RevenueEvent.org_id == org_id)
            .order_by(RevenueEvent.occurred_at.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())
