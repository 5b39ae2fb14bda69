"""Revenue and usage over a range of days, counted in SQL, with days read in a chosen time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.billing.models import BillingAccount, RevenueEvent, SubscriptionStatus, UsageDaily
from hutch.billing.plans import PlanCatalog
from hutch.channels.models import ChannelUsageDaily
from hutch.channels.voice.models import VoiceSession
from hutch.conversations.models import Conversation, Message, MessageRole
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus
from hutch.settings import Settings


@dataclass(frozen=True)
class Range:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    tz: str

    @classmethod
    def of(cls, days: int, start: date | None, end: date | None, tz: str) -> Range:
        """``from``/``to`` (whole days in ``tz``, both included) when given, else the last ``days`` days."""
        zone = ZoneInfo(tz)
        if start is None or end is None:
            end = datetime.now(zone).date()
            start = end - timedelta(days=days - 1)
        begin = datetime.combine(start, datetime.min.time(), zone)
        finish = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
        return cls(begin.astimezone(UTC), finish.astimezone(UTC), tz)

    def day(self, column: Any) -> Any:
        """The calendar day of a timestamp column in the range's time zone."""
        return func.date(func.timezone(self.tz, column))

    def covers(self, column: Any) -> Any:
        return (column >= self.start) & (column < self.end)


def _price(plans: PlanCatalog, plan_id: str | None) -> int:
    plan = plans.plan(plan_id or "")
    if plan is None:
        return 0
    return plan.price_cents // 12 if plan.interval == "year" else plan.price_cents


async def revenue(session: AsyncSession, plans: PlanCatalog, span: Range) -> dict[str, Any]:
    day = span.day(RevenueEvent.occurred_at)
    in_range = span.covers(RevenueEvent.occurred_at)
    daily = (
        await session.execute(
            select(day, func.sum(RevenueEvent.amount_cents), func.count())
            .where(in_range)
            .group_by(day)
            .order_by(day)
        )
    ).all()
    by_kind = (
        await session.execute(
            select(
                RevenueEvent.kind,
                RevenueEvent.plan,
                RevenueEvent.package,
                func.sum(RevenueEvent.amount_cents),
                func.count(),
            )
            .where(in_range)
            .group_by(RevenueEvent.kind, RevenueEvent.plan, RevenueEvent.package)
            .order_by(RevenueEvent.kind, RevenueEvent.plan, RevenueEvent.package)
        )
    ).all()
    total = sum(int(r[1]) for r in daily)
    transactions = sum(int(r[2]) for r in daily)
    # MRR movement from subscription payments: an org's first one is new; a dearer plan than its last,
    # expansion (a cheaper one, contraction); a subscription canceled in the range, churn.
    subscription = RevenueEvent.kind == "subscription"
    history = (
        select(
            RevenueEvent.org_id,
            RevenueEvent.plan,
            RevenueEvent.occurred_at,
            func.lag(RevenueEvent.plan)
            .over(partition_by=RevenueEvent.org_id, order_by=RevenueEvent.occurred_at)
            .label("previous"),
            (
                func.row_number().over(partition_by=RevenueEvent.org_id, order_by=RevenueEvent.occurred_at)
                == literal_column("1")
            ).label("first"),
        )
        .where(subscription)
        .subquery()
    )
    moves = (
        await session.execute(
            select(history.c.plan, history.c.previous, history.c.first, func.count())
            .where(span.covers(history.c.occurred_at))
            .group_by(history.c.plan, history.c.previous, history.c.first)
        )
    ).all()
    new = expansion = contraction = 0
    for plan, previous, first, count in moves:
        if first:
            new += count * _price(plans, plan)
            continue
        change = _price(plans, plan) - _price(plans, previous)
        if change > 0:
            expansion += count * change
        else:
            contraction += count * -change
    churned = (
        await session.execute(
            select(BillingAccount.subscribed_plan, func.count())
            .where(
                BillingAccount.status == SubscriptionStatus.CANCELED,
                span.covers(BillingAccount.stripe_state_at),
            )
            .group_by(BillingAccount.subscribed_plan)
        )
    ).all()
    churn = sum(count * _price(plans, plan) for plan, count in churned)
    return {
        "from": span.start,
        "to": span.end,
        "timezone": span.tz,
        "revenue_cents": total,
        "transactions": transactions,
        "average_transaction_cents": round(total / transactions) if transactions else 0,
        "daily": [{"day": d, "revenue_cents": int(s), "transactions": int(n)} for d, s, n in daily],
        "by_kind": [
            {"kind": k, "plan": p, "package": pk, "revenue_cents": int(s), "transactions": int(n)}
            for k, p, pk, s, n in by_kind
        ],
        "mrr_movement_cents": {
            "new": new,
            "expansion": expansion,
            "contraction": contraction,
            "churn": churn,
            "net": new + expansion - contraction - churn,
        },
    }


async def usage(session: AsyncSession, span: Range) -> dict[str, Any]:
    messages = span.covers(Message.created_at)
    active = await session.scalar(select(func.count()).where(span.covers(User.last_active_at)))
    sessions = await session.scalar(select(func.count()).where(span.covers(Conversation.created_at)))
    # One pass over the range's messages (no join: each carries its channel), grouped by day, channel and
    # provider, then folded into the three breakdowns.
    day = span.day(Message.created_at)
    provider = func.split_part(Message.model, "/", 1)
    answered = Message.role == MessageRole.ASSISTANT
    groups = (
        await session.execute(
            select(
                day,
                Message.channel,
                provider,
                func.count(),
                func.coalesce(func.sum(Message.input_tokens).filter(answered), 0),
                func.coalesce(func.sum(Message.output_tokens).filter(answered), 0),
                func.coalesce(func.sum(Message.cost_micro_usd).filter(answered), 0),
            )
            .where(messages)
            .group_by(day, Message.channel, provider)
        )
    ).all()
    by_channel: dict[str, int] = {}
    by_day: dict[Any, int] = {}
    by_provider: dict[str, list[int]] = {}
    for on_day, channel, model_provider, count, tokens_in, tokens_out, cost in groups:
        by_channel[channel or "unknown"] = by_channel.get(channel or "unknown", 0) + count
        by_day[on_day] = by_day.get(on_day, 0) + count
        if model_provider:
            sums = by_provider.setdefault(model_provider, [0, 0, 0])
            sums[0], sums[1], sums[2] = sums[0] + tokens_in, sums[1] + tokens_out, sums[2] + cost
    voice = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(VoiceSession.seconds), 0)).where(
                span.covers(VoiceSession.started_at)
            )
        )
    ).one()
    voice_count, voice_seconds = int(voice[0]), int(voice[1])
    return {
        "from": span.start,
        "to": span.end,
        "timezone": span.tz,
        "active_users": int(active or 0),
        "sessions": int(sessions or 0),
        "messages_by_channel": dict(sorted(by_channel.items())),
        "models_by_provider": [
            {"provider": p, "input_tokens": int(i), "output_tokens": int(o), "cost_micro_usd": int(c)}
            for p, (i, o, c) in sorted(by_provider.items())
        ],
        "daily_messages": [{"day": d, "messages": n} for d, n in sorted(by_day.items())],
        "voice": {
            "sessions": voice_count,
            "hours": round(voice_seconds / 3600, 2),
            "average_session_minutes": round(voice_seconds / voice_count / 60, 1) if voice_count else 0.0,
        },
    }


async def org_usage(session: AsyncSession, org_id: str, days: int) -> dict[str, Any]:
    """One organisation's last ``days`` UTC days: messages in and out by channel, tokens, voice minutes."""
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    channels = (
        await session.execute(
            select(
                ChannelUsageDaily.day,
                ChannelUsageDaily.channel,
                func.sum(ChannelUsageDaily.inbound),
                func.sum(ChannelUsageDaily.outbound),
            )
            .where(ChannelUsageDaily.org_id == org_id, ChannelUsageDaily.day >= since)
            .group_by(ChannelUsageDaily.day, ChannelUsageDaily.channel)
            .order_by(ChannelUsageDaily.day, ChannelUsageDaily.channel)
        )
    ).all()
    daily = (
        await session.execute(
            select(
                UsageDaily.day,
                UsageDaily.messages,
                UsageDaily.input_tokens,
                UsageDaily.output_tokens,
                UsageDaily.voice_seconds,
            )
            .where(UsageDaily.org_id == org_id, UsageDaily.day >= since)
            .order_by(UsageDaily.day)
        )
    ).all()
    return {
        "days": days,
        "channels": [
            {"day": d, "channel": c, "inbound": int(i), "outbound": int(o)} for d, c, i, o in channels
        ],
        "daily": [
            {
                "day": d,
                "messages": m,
                "input_tokens": i,
                "output_tokens": o,
                "voice_minutes": round(v / 60, 1),
            }
            for d, m, i, o, v in daily
        ],
    }


MICRO_USD_PER_CENT = 10_000


def _cents(micro_usd: int) -> int:
    return round(micro_usd / MICRO_USD_PER_CENT)


async def margin(session: AsyncSession, settings: Settings, span: Range, limit: int = 100) -> dict[str, Any]:
    """Revenue against what serving it cost, per organisation (worst first), and the costs per agent and
    channel: model tokens on the platform's keys at catalog prices, runtime hours at their host's hourly
    cost, outgoing WhatsApp and Telegram messages at their configured price."""
    answered = (
        (Message.role == MessageRole.ASSISTANT) & Message.byok.is_(False) & span.covers(Message.created_at)
    )
    revenue_by_org = dict(
        (
            await session.execute(
                select(RevenueEvent.org_id, func.sum(RevenueEvent.amount_cents))
                .where(span.covers(RevenueEvent.occurred_at))
                .group_by(RevenueEvent.org_id)
            )
        ).all()
    )
    model_by_org = dict(
        (
            await session.execute(
                select(Message.org_id, func.sum(Message.cost_micro_usd))
                .where(answered)
                .group_by(Message.org_id)
            )
        ).all()
    )
    # Runtime hours inside the range, from when each became ready (a running runtime counts until now).
    until = func.least(func.now(), span.end)
    hours = func.greatest(
        0.0, func.extract("epoch", until - func.greatest(Runtime.ready_at, span.start)) / 3600.0
    )
    runtime_by_org = dict(
        (
            await session.execute(
                select(Runtime.org_id, func.sum(hours * RuntimeHost.hourly_cost_cents))
                .join(RuntimeHost, RuntimeHost.id == Runtime.host_id)
                .where(Runtime.status == RuntimeStatus.READY, Runtime.ready_at.is_not(None))
                .group_by(Runtime.org_id)
            )
        ).all()
    )
    message_price = {
        "whatsapp": settings.whatsapp_message_cost_micro_usd,
        "telegram": settings.telegram_message_cost_micro_usd,
    }
    since, before = span.start.date(), span.end.date()
    outbound = (
        await session.execute(
            select(ChannelUsageDaily.org_id, ChannelUsageDaily.channel, func.sum(ChannelUsageDaily.outbound))
            .where(ChannelUsageDaily.day >= since, ChannelUsageDaily.day < before)
            .group_by(ChannelUsageDaily.org_id, ChannelUsageDaily.channel)
        )
    ).all()
    messaging_by_org: dict[str, int] = {}
    messaging_by_channel: dict[str, int] = {}
    for org_id, channel, count in outbound:
        cost = int(count) * message_price.get(channel, 0)
        messaging_by_org[org_id] = messaging_by_org.get(org_id, 0) + cost
        messaging_by_channel[channel] = messaging_by_channel.get(channel, 0) + cost
    orgs = set(revenue_by_org) | set(model_by_org) | set(runtime_by_org) | set(messaging_by_org)
    names = (
        dict((await session.execute(select(Org.id, Org.name).where(Org.id.in_(orgs)))).all()) if orgs else {}
    )
    rows = []
    for org_id in orgs:
        revenue_cents = int(revenue_by_org.get(org_id) or 0)
        model_cents = _cents(int(model_by_org.get(org_id) or 0))
        runtime_cents = round(float(runtime_by_org.get(org_id) or 0))
        messaging_cents = _cents(messaging_by_org.get(org_id, 0))
        cost = model_cents + runtime_cents + messaging_cents
        rows.append(
            {
                "org_id": org_id,
                "name": names.get(org_id, ""),
                "revenue_cents": revenue_cents,
                "model_cost_cents": model_cents,
                "runtime_cost_cents": runtime_cents,
                "messaging_cost_cents": messaging_cents,
                "margin_cents": revenue_cents - cost,
            }
        )
    rows.sort(key=lambda r: (r["margin_cents"], r["org_id"]))
    model_by_channel = (
        await session.execute(
            select(Message.channel, func.sum(Message.cost_micro_usd))
            .where(answered)
            .group_by(Message.channel)
        )
    ).all()
    channels: dict[str, int] = {str(c or "unknown"): _cents(int(v or 0)) for c, v in model_by_channel}
    for channel, cost in messaging_by_channel.items():
        channels[channel] = channels.get(channel, 0) + _cents(cost)
    by_agent = (
        await session.execute(
            select(Conversation.agent_id, func.sum(Message.cost_micro_usd))
            .select_from(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(answered)
            .group_by(Conversation.agent_id)
            .order_by(func.sum(Message.cost_micro_usd).desc())
            .limit(limit)
        )
    ).all()
    return {
        "from": span.start,
        "to": span.end,
        "orgs": rows[:limit],
        "cost_by_channel_cents": dict(sorted(channels.items())),
        "model_cost_by_agent": [{"agent_id": a, "cost_cents": _cents(int(c or 0))} for a, c in by_agent],
    }
