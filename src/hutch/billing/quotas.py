"""Plan limits applied: counted resources, message quotas and rates, and metering of what was used.

Messages are reserved before the model runs (per minute → 429, per day → 429 until midnight UTC, per
month → 402) and metered after it answers (tokens, cost). Orgs on a pay-per-use plan are charged each
answer's token cost in credits, except for answers made with their own provider key (BYOK).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CTE, Label, bindparam, column, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.apikeys.budget import adjust_spend_sql, spend_change
from hutch.billing.ledger import Ledger
from hutch.billing.models import Balance, LedgerKind, LedgerUnit, UsageDaily, UsageMonthly
from hutch.billing.plans import LimitName, Plan, PlanCatalog
from hutch.core.errors import PaymentRequired, QuotaExceeded, RateLimited
from hutch.core.quota import lock_org, month_start, reserve_statement, seconds_until_next_day, utc_day
from hutch.core.ratelimit import RateDecision, RateLimiter
from hutch.db.carried import Carried, built_once

MICRO_USD_PER_CENT = 10_000
_ORG = select(Org).where(Org.id == bindparam("org_id"))  # built once: read on every turn


def _message_reservation(after: str | None) -> tuple[tuple[CTE, ...], tuple[Label[Any], ...]]:
    """The day's and the month's message reservations as CTEs, and their new counts (NULL: refused) as
    columns. Each CTE runs whatever the other does; when either is refused the caller raises, and the
    rollback takes back the one that succeeded. With ``after``, they are made once that CTE's row is."""
    ctes = tuple(
        text(
            reserve_statement(
                table,
                ("org_id", period),
                "messages",
                limit=f"reserve_{period}_limit",
                keys={"org_id": "reserve_org_id", period: f"reserve_{period}"},
                after=after,
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
_USAGE_ADDED = (
    text(
        "INSERT INTO usage_daily (org_id, day, messages, input_tokens, output_tokens, cost_micro_usd, "
        "documents, voice_seconds) VALUES (:usage_org_id, :usage_day, 0, :usage_input_tokens, "
        ":usage_output_tokens, :usage_cost, :usage_documents, :usage_voice_seconds) "
        "ON CONFLICT (org_id, day) DO UPDATE SET "
        "input_tokens = usage_daily.input_tokens + EXCLUDED.input_tokens, "
        "output_tokens = usage_daily.output_tokens + EXCLUDED.output_tokens, "
        "cost_micro_usd = usage_daily.cost_micro_usd + EXCLUDED.cost_micro_usd, "
        "documents = usage_daily.documents + EXCLUDED.documents, "
        "voice_seconds = usage_daily.voice_seconds + EXCLUDED.voice_seconds "
        "RETURNING org_id"
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

# (one, several) of what a limit counts, for messages like "allows 1 agent" and "allows 3 agents".
LIMIT_LABELS: dict[LimitName, tuple[str, str]] = {
    "agents": ("agent", "agents"),
    "dedicated_runtimes": ("dedicated runtime", "dedicated runtimes"),
    "messages_per_month": ("message a month", "messages a month"),
    "messages_per_day": ("message a day", "messages a day"),
    "messages_per_minute": ("message a minute", "messages a minute"),
    "documents_per_agent": ("document per agent", "documents per agent"),
    "storage_mb": ("MB of storage", "MB of storage"),
}


class MessageQuotaExceeded(QuotaExceeded):
    def __init__(self, plan: Plan, limit: int) -> None:
        super().__init__(
            "messages_per_month",
            plan.id,
            f"The {plan.name} plan's {limit} messages this month are used up; upgrade the plan "
            "or wait for next month.",
        )


class NoCreditsLeft(PaymentRequired):
    def __init__(self) -> None:
        super().__init__(
            "Your plan charges answers to prepaid credits and none are left; buy credits "
            "(POST /api/v1/billing/purchase) or ask an admin for a grant."
        )


@dataclass(frozen=True)
class TurnUsage:
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    byok: bool


class Quotas:
    def __init__(self, session: AsyncSession, plans: PlanCatalog, limiter: RateLimiter | None = None) -> None:
        self.session = session
        self.plans = plans
        self.limiter = limiter
        self._plan_of: dict[str, Plan] = {}  # read once per unit of work
        self._orgs: dict[str, Org | None] = {}
        self.month_count: int | None = None  # the org's messages this month after the last reservation

    def on(self, session: AsyncSession) -> Quotas:
        """These quotas on another session, with the orgs and plans read so far."""
        quotas = Quotas(session, self.plans, self.limiter)
        quotas._orgs, quotas._plan_of = dict(self._orgs), dict(self._plan_of)
        return quotas

    def knows(self, org: Org) -> None:
        """Take an org row the caller read already (with its agent, say) instead of reading it again."""
        self._orgs[org.id] = org

    async def org(self, org_id: str) -> Org | None:
        """The org's row, read once per unit of work (a turn needs its plan, and its name for the prompt)."""
        if org_id not in self._orgs:
            self._orgs[org_id] = await self.session.scalar(_ORG, {"org_id": org_id})
        return self._orgs[org_id]

    async def plan_of(self, org_id: str) -> Plan:
        plan = self._plan_of.get(org_id)
        if plan is None:
            org = await self.org(org_id)
            plan = self._plan_of[org_id] = self.plans.plan_or_free(org.plan if org else "")
        return plan

    async def check_count(
        self, org_id: str, limit: LimitName, count: Callable[[], Awaitable[int]], adding: int = 1
    ) -> Plan:
        """Lock the org, count what exists, and refuse (402) when ``adding`` more would pass the limit.

        The lock holds until the caller's transaction ends, so the caller's insert is counted by the next
        request in line."""
        plan = await self.plan_of(org_id)
        allowed = plan.limit(limit)
        if allowed is None:
            return plan
        await lock_org(self.session, org_id)
        if await count() + adding > allowed:
            raise QuotaExceeded(
                limit,
                plan.id,
                f"The {plan.name} plan allows {allowed} {LIMIT_LABELS[limit][allowed != 1]}; "
                "upgrade the plan to add more.",
            )
        return plan

    async def limiter_hit(self, key: str, limit: int, window_seconds: int) -> RateDecision | None:
        """Count one event on the shared limiter (None without one)."""
        return await self.limiter.hit(key, limit, window_seconds) if self.limiter is not None else None

    async def reserve_message(self, org_id: str, now: datetime | None = None) -> Plan:
        """Count one message against the org's rates and quotas, or refuse it (429 or 402)."""
        await self.admit_message(org_id)
        reservation = await self.message_reservation(org_id, now=now)
        return await self.settle_reservation(org_id, await reservation.execute(self.session), now)

    async def admit_message(self, org_id: str) -> None:
        """Refuse (429) a message past the plan's per-minute rate, counted on the shared limiter."""
        plan = await self.plan_of(org_id)
        per_minute = plan.limits.messages_per_minute
        if per_minute is not None and self.limiter is not None:
            decision = await self.limiter.hit(f"messages:{org_id}", per_minute, 60)
            if not decision.allowed:
                raise RateLimited(
                    decision.retry_after,
                    f"The {plan.name} plan answers {per_minute} messages per minute; try again shortly.",
                )

    async def message_reservation(
        self, org_id: str, *, after: str | None = None, now: datetime | None = None
    ) -> Carried:
        """One message on the day's and the month's counts, for a statement to carry (``after``: see
        :func:`reserve_statement`); settle its values with :meth:`settle_reservation`."""
        now = now or datetime.now(UTC)
        plan = await self.plan_of(org_id)
        ctes, columns = built_once(("message reservation", after), lambda: _message_reservation(after))
        params = {  # named apart from the columns of the inserts that carry them (see ``Carried``)
            "reserve_org_id": org_id,
            "reserve_day": utc_day(now),
            "reserve_month": month_start(now),
            "amount": 1,
            "reserve_day_limit": plan.limits.messages_per_day,
            "reserve_month_limit": plan.limits.messages_per_month,
        }
        return Carried(ctes, columns, params)

    async def settle_reservation(
        self, org_id: str, reserved: Mapping[str, Any], now: datetime | None = None
    ) -> Plan:
        """Refuse a message whose reservation did not fit (429 for the day, 402 for the month or for no
        credits on pay-per-use plans); the caller's rollback then takes it back."""
        plan = await self.plan_of(org_id)
        if reserved["reserved_day"] is None:
            raise RateLimited(
                seconds_until_next_day(now or datetime.now(UTC)),
                f"The {plan.name} plan answers {plan.limits.messages_per_day} messages per day; "
                "try again tomorrow (UTC) or upgrade the plan.",
            )
        if reserved["reserved_month"] is None:
            assert plan.limits.messages_per_month is not None
            raise MessageQuotaExceeded(plan, plan.limits.messages_per_month)
        self.month_count = int(reserved["reserved_month"])
        if plan.pay_per_use and await self.credits(org_id) <= 0:
            raise NoCreditsLeft()
        return plan

    async def credits(self, org_id: str) -> int:
        value = await self.session.scalar(select(Balance.credits_cents).where(Balance.org_id == org_id))
        return int(value or 0)

    def turn_counters(
        self, org_id: str, usage: TurnUsage, *, api_key_id: str | None = None, now: datetime | None = None
    ) -> Carried:
        """A turn's tokens and cost on the org's usage counters, for the statement storing its answer.

        With ``api_key_id``, the cost also counts against that key's monthly budget (whole cents, rounded up:
        a budget is a cap, so a fraction of a cent counts as one), unless the org's own provider key paid."""
        charged_key = None
        if api_key_id is not None and not usage.byok and usage.cost_micro_usd > 0:
            charged_key = (api_key_id, -(-usage.cost_micro_usd // MICRO_USD_PER_CENT))
        return self.counters(
            org_id,
            now or datetime.now(UTC),
            usage.input_tokens,
            usage.output_tokens,
            usage.cost_micro_usd,
            charged_key=charged_key,
        )

    async def charges_credits(self, org_id: str, usage: TurnUsage) -> bool:
        """Whether the turn is paid in credits: pay-per-use plans, with a cost, not on the org's own key."""
        plan = await self.plan_of(org_id)
        return plan.pay_per_use and not usage.byok and usage.cost_micro_usd > 0

    async def meter_turn(
        self, org_id: str, usage: TurnUsage, ledger: Ledger, reference: str, *, api_key_id: str | None = None
    ) -> None:
        """Count the turn's usage (see :meth:`turn_counters`) and charge it (see :meth:`charge_turn`)."""
        await self.turn_counters(org_id, usage, api_key_id=api_key_id).execute(self.session)
        await self.charge_turn(org_id, usage, ledger, reference)

    async def charge_turn(self, org_id: str, usage: TurnUsage, ledger: Ledger, reference: str) -> None:
        """On pay-per-use plans, charge whole cents of the turn's cost (never below zero); the fractions carry
        over to the next turn."""
        if not await self.charges_credits(org_id, usage):
            return
        await ledger.ensure_balance(org_id)
        row = (await self.session.execute(_CARRY, {"org_id": org_id, "cost": usage.cost_micro_usd})).one()
        cents = min(int(row.uncharged_micro_usd) // MICRO_USD_PER_CENT, int(row.credits_cents))
        if cents <= 0:
            return
        left = int(row.uncharged_micro_usd) - cents * MICRO_USD_PER_CENT
        await self.session.execute(_TAKE_CARRY, {"org_id": org_id, "left": left})
        await ledger.post(
            org_id,
            LedgerUnit.CREDITS,
            LedgerKind.SPEND,
            -cents,
            description="Model usage",
            reference=f"usage:{reference}",
        )

    def counters(
        self,
        org_id: str,
        now: datetime,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_micro_usd: int = 0,
        *,
        documents: int = 0,
        voice_seconds: int = 0,
        charged_key: tuple[str, int] | None = None,
    ) -> Carried:
        """Additions to the org's usage of the day; ``charged_key`` (key id, cents) adds to its spend too."""
        values: dict[str, object] = {
            "usage_org_id": org_id,
            "usage_day": utc_day(now),
            "usage_input_tokens": input_tokens,
            "usage_output_tokens": output_tokens,
            "usage_cost": cost_micro_usd,
            "usage_documents": documents,
            "usage_voice_seconds": voice_seconds,
        }
        if charged_key is None:
            return Carried((_USAGE_ADDED,), params=values)
        return Carried((_USAGE_ADDED, _KEY_SPEND_ADDED), params=values | spend_change(*charged_key, now))

    async def meter(self, org_id: str, now: datetime, *, documents: int = 0, voice_seconds: int = 0) -> None:
        """Add documents or voice seconds to the org's usage of the day."""
        await self.counters(org_id, now, documents=documents, voice_seconds=voice_seconds).execute(
            self.session
        )

    async def usage(self, org_id: str, now: datetime | None = None) -> dict[str, int]:
        now = now or datetime.now(UTC)
        month = month_start(now)
        today = utc_day(now)
        totals = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(UsageDaily.input_tokens), 0),
                    func.coalesce(func.sum(UsageDaily.output_tokens), 0),
                    func.coalesce(func.sum(UsageDaily.cost_micro_usd), 0),
                    func.coalesce(func.sum(UsageDaily.voice_seconds), 0),
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
        }


QUOTA_NOTICE_JOB = "billing.quota_notice"
QUOTA_NOTICES = (80, 100)  # percent of the month's messages at which owners hear about it


def quota_notice_due(plan: Plan, month_count: int | None) -> int | None:
    """The percentage just reached by this message (80 or 100), if any: reservations count one by one,
    so exactly one message reaches each mark."""
    limit = plan.limits.messages_per_month
    if not limit or month_count is None:
        return None
    return next((p for p in QUOTA_NOTICES if month_count == -(-limit * p // 100)), None)
