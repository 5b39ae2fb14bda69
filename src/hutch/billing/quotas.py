"""Plan limits applied: counted resources, message quotas and rates, and metering of what was used.

Messages are reserved before the model runs (per minute → 429, per day → 429 until midnight UTC, per
month → 402) and metered after it answers (tokens, cost). Orgs on a pay-per-use plan are charged each
answer's token cost in credits, except for answers made with their own provider key (BYOK).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.billing.ledger import Ledger
from hutch.billing.models import LedgerKind, LedgerUnit
from hutch.billing.plans import LimitName, Plan, PlanCatalog
from hutch.billing.repository import QuotaRepository, UsageCounts
from hutch.core.errors import PaymentRequired, QuotaExceeded, RateLimited
from hutch.core.quota import lock_org, month_start, seconds_until_next_day, utc_day
from hutch.core.ratelimit import RateDecision, RateHit, RateLimiter
from hutch.db.carried import Carried

MICRO_USD_PER_CENT = 10_000

# (one, several) of what a limit counts, for messages like "allows 1 agent" and "allows 3 agents".
LIMIT_LABELS: dict[LimitName, tuple[str, str]] = {
    "agents": ("agent", "agents"),
    "dedicated_runtimes": ("dedicated runtime", "dedicated runtimes"),
    "messages_per_month": ("message a month", "messages a month"),
    "messages_per_day": ("message a day", "messages a day"),
    "messages_per_minute": ("message a minute", "messages a minute"),
    "documents_per_agent": ("document per agent", "documents per agent"),
    "storage_mb": ("MB of storage", "MB of storage"),
    "telegram_bots": ("Telegram bot", "Telegram bots"),
    "telegram_bot_requests_per_day": ("Telegram bot request a day", "Telegram bot requests a day"),
    "end_user_messages_per_minute": ("message a minute per person", "messages a minute per person"),
    "end_user_messages_per_day": ("message a day per person", "messages a day per person"),
}
DAY_SECONDS = 86_400  # the limiter's day windows start at midnight UTC


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


class EndUserRateLimited(RateLimited):
    """One person past an agent's per-person limit (fair use). The detail is the owner's (API callers);
    messengers word it for the person (``hutch.turns.inbox.notice``). ``first``: the message that went past
    the limit in its window, the one the owner hears about."""

    def __init__(self, limit: int, window_seconds: int, retry_after: int, *, first: bool) -> None:
        per = "day" if window_seconds == DAY_SECONDS else "minute"
        self.per, self.limit, self.first = per, limit, first
        when = "tomorrow (UTC)" if per == "day" else "shortly"
        super().__init__(
            retry_after,
            f"This agent answers one person {limit} {'message' if limit == 1 else 'messages'} per {per}; "
            f"try again {when}.",
        )

    @property
    def note(self) -> str:
        """What the owner sees on the person in the inbox."""
        name: LimitName = "end_user_messages_per_day" if self.per == "day" else "end_user_messages_per_minute"
        return f"went past {self.limit} {LIMIT_LABELS[name][self.limit != 1]}"


@dataclass(frozen=True)
class Person:
    """One end user of an agent, with the agent's own per-person limits (None: the plan's)."""

    agent_id: str
    end_user: str
    per_minute: int | None
    per_day: int | None


def _lower(own: int | None, plan: int | None) -> int | None:
    """An agent's own value, held under the plan's (a downgrade may leave it above)."""
    if own is None or plan is None:
        return own if own is not None else plan
    return min(own, plan)


@dataclass(frozen=True)
class TurnUsage:
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int  # everything the answer cost: the model's tokens and its tool calls
    byok: bool
    tool_calls: int = 0  # calls to tools that reach outside (see hutch.engine.tools.METERED)
    tool_cost_micro_usd: int = 0


@dataclass(frozen=True)
class ToolBudget:
    limit: int  # the plan's calls to outside tools a month
    left: int


class Quotas:
    def __init__(self, session: AsyncSession, plans: PlanCatalog, limiter: RateLimiter | None = None) -> None:
        self.session = session
        self.repository = QuotaRepository(session)
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
            self._orgs[org_id] = await self.repository.org(org_id)
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

    async def admit_message(self, org_id: str, person: Person | None = None) -> None:
        """Refuse (429) a message past the plan's per-minute rate; with ``person``, first past the agent's
        per-person limits (a person refused spends none of the org's rate, so one person sending too fast
        uses none of everyone else's). Every counter is on the shared limiter (API processes and workers
        count together), all in one round trip; a person's refused message counts too, so sending faster
        does not help."""
        plan = await self.plan_of(org_id)
        limiter = self.limiter
        if limiter is None:
            return
        per_minute = plan.limits.messages_per_minute
        org = RateHit(f"messages:{org_id}", per_minute, 60) if per_minute is not None else None
        hits = self._person_hits(plan, person) if person is not None else []
        if hits:
            decisions, counted = (
                await limiter.hit_then(hits, org) if org is not None else (await limiter.hit_many(hits), None)
            )
            for hit, decision in zip(hits, decisions, strict=True):
                if not decision.allowed:
                    raise EndUserRateLimited(
                        hit.limit,
                        hit.window_seconds,
                        decision.retry_after,
                        first=decision.count == hit.limit + 1,
                    )
        elif org is not None:
            counted = await limiter.hit(org.key, org.limit, org.window_seconds)
        else:
            return
        if counted is not None and not counted.allowed:
            raise RateLimited(
                counted.retry_after,
                f"The {plan.name} plan answers {per_minute} messages per minute; try again shortly.",
            )

    @staticmethod
    def _person_hits(plan: Plan, person: Person) -> list[RateHit]:
        """The person's counters: the agent's per-person limits, held under the plan's."""
        own = plan.limits
        # The end user's id may be long (up to 200 characters, as long as the limiter's keys): hashed.
        digest = hashlib.blake2b(person.end_user.encode(), digest_size=12).hexdigest()
        return [
            RateHit(f"end-user:{person.agent_id}:{digest}:{seconds}", limit, seconds)
            for limit, seconds in (
                (_lower(person.per_minute, own.end_user_messages_per_minute), 60),
                (_lower(person.per_day, own.end_user_messages_per_day), DAY_SECONDS),
            )
            if limit is not None
        ]

    async def message_reservation(self, org_id: str, *, now: datetime | None = None) -> Carried:
        """One message on the day's and the month's counts, for a statement to carry; settle its values with
        :meth:`settle_reservation`."""
        now = now or datetime.now(UTC)
        limits = (await self.plan_of(org_id)).limits
        return self.repository.message_reservation(
            org_id, now, limits.messages_per_day, limits.messages_per_month
        )

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
        return await self.repository.credits(org_id)

    def turn_counters(
        self, org_id: str, usage: TurnUsage, *, api_key_id: str | None = None, now: datetime | None = None
    ) -> Carried:
        """A turn's tokens and cost on the org's usage counters, for the statement storing its answer.

        With ``api_key_id``, the cost also counts against that key's monthly budget (whole cents, rounded up:
        a budget is a cap, so a fraction of a cent counts as one), unless the org's own provider key paid."""
        charged_key = None
        if api_key_id is not None and not usage.byok and usage.cost_micro_usd > 0:
            charged_key = (api_key_id, -(-usage.cost_micro_usd // MICRO_USD_PER_CENT))
        counts = UsageCounts(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_micro_usd=usage.cost_micro_usd,
            tool_calls=usage.tool_calls,
            tool_cost_micro_usd=usage.tool_cost_micro_usd,
        )
        return self.counters(org_id, now or datetime.now(UTC), counts, charged_key=charged_key)

    async def charges_credits(self, org_id: str, usage: TurnUsage) -> bool:
        """Whether the turn is paid in credits: pay-per-use plans, with a cost, not on the org's own key."""
        plan = await self.plan_of(org_id)
        return plan.pay_per_use and not usage.byok and usage.cost_micro_usd > 0

    async def meter_turn(
        self, org_id: str, usage: TurnUsage, ledger: Ledger, reference: str, *, api_key_id: str | None = None
    ) -> None:
        """Count the turn's usage (see :meth:`turn_counters`) and charge it (see :meth:`charge_turn`)."""
        await self.repository.write(self.turn_counters(org_id, usage, api_key_id=api_key_id))
        await self.charge_turn(org_id, usage, ledger, reference)

    async def charge_turn(self, org_id: str, usage: TurnUsage, ledger: Ledger, reference: str) -> None:
        """On pay-per-use plans, charge whole cents of the turn's cost (never below zero); the fractions carry
        over to the next turn."""
        if not await self.charges_credits(org_id, usage):
            return
        await ledger.ensure_balance(org_id)
        uncharged, credits = await self.repository.add_uncharged(org_id, usage.cost_micro_usd)
        cents = min(uncharged // MICRO_USD_PER_CENT, credits)
        if cents <= 0:
            return
        await self.repository.set_uncharged(org_id, uncharged - cents * MICRO_USD_PER_CENT)
        await ledger.post(
            org_id,
            LedgerUnit.CREDITS,
            LedgerKind.SPEND,
            -cents,
            description="Model usage",
            reference=f"usage:{reference}",
        )

    def counters(
        self, org_id: str, now: datetime, counts: UsageCounts, *, charged_key: tuple[str, int] | None = None
    ) -> Carried:
        """Additions to the org's usage of the day; ``charged_key`` (key id, cents) adds to its spend too."""
        return self.repository.usage_added(org_id, now, counts, charged_key)

    async def meter(self, org_id: str, now: datetime, counts: UsageCounts) -> None:
        """Add what was used outside a turn's answer (documents, voice seconds, ...) to the day's usage."""
        await self.repository.write(self.counters(org_id, now, counts))

    async def tool_calls_left(self, org_id: str, now: datetime | None = None) -> ToolBudget | None:
        """How many calls to outside tools the org's plan still allows this month; None: no limit."""
        limit = (await self.plan_of(org_id)).limits.tool_calls_per_month
        if limit is None:
            return None
        used = await self.repository.tool_calls_since(org_id, month_start(now or datetime.now(UTC)))
        return ToolBudget(limit, max(0, limit - used))

    async def usage(self, org_id: str, now: datetime | None = None) -> dict[str, int]:
        now = now or datetime.now(UTC)
        return await self.repository.usage(org_id, month_start(now), utc_day(now))


QUOTA_NOTICE_JOB = "billing.quota_notice"
QUOTA_NOTICES = (80, 100)  # percent of the month's messages at which owners hear about it


def quota_notice_due(plan: Plan, month_count: int | None) -> int | None:
    """The percentage just reached by this message (80 or 100), if any: reservations count one by one,
    so exactly one message reaches each mark."""
    limit = plan.limits.messages_per_month
    if not limit or month_count is None:
        return None
    return next((p for p in QUOTA_NOTICES if month_count == -(-limit * p // 100)), None)
