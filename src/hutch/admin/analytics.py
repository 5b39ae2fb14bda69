"""Revenue and usage over a range of days, counted in SQL, with days read in a chosen time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.admin.queries import AnalyticsQueries
from hutch.billing.plans import PlanCatalog
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
    queries = AnalyticsQueries(session)
    daily = await queries.revenue_by_day(span)
    by_kind = await queries.revenue_by_kind(span)
    total = sum(int(r[1]) for r in daily)
    transactions = sum(int(r[2]) for r in daily)
    # MRR movement from subscription payments: an org's first one is new; a dearer plan than its last,
    # expansion (a cheaper one, contraction); a subscription canceled in the range, churn.
    moves = await queries.subscription_moves(span)
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
    churned = await queries.churned_by_plan(span)
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
    queries = AnalyticsQueries(session)
    active = await queries.active_users(span)
    sessions = await queries.sessions_started(span)
    # The range's messages grouped by day, channel and provider, folded into the three breakdowns.
    groups = await queries.message_groups(span)
    by_channel: dict[str, int] = {}
    by_day: dict[Any, int] = {}
    by_provider: dict[str, list[int]] = {}
    for on_day, channel, model_provider, count, tokens_in, tokens_out, cost in groups:
        by_channel[channel or "unknown"] = by_channel.get(channel or "unknown", 0) + count
        by_day[on_day] = by_day.get(on_day, 0) + count
        if model_provider:
            sums = by_provider.setdefault(model_provider, [0, 0, 0])
            sums[0], sums[1], sums[2] = sums[0] + tokens_in, sums[1] + tokens_out, sums[2] + cost
    voice_count, voice_seconds = await queries.voice(span)
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
    queries = AnalyticsQueries(session)
    channels = await queries.org_channel_usage(org_id, since)
    daily = await queries.org_daily_usage(org_id, since)
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
                "tool_calls": t,
                "transcription_minutes": round(a / 60, 1),
            }
            for d, m, i, o, v, t, a in daily
        ],
    }


MICRO_USD_PER_CENT = 10_000


def _cents(micro_usd: int) -> int:
    return round(micro_usd / MICRO_USD_PER_CENT)


async def margin(session: AsyncSession, settings: Settings, span: Range, limit: int = 100) -> dict[str, Any]:
    """Revenue against what serving it cost, per organisation (worst first), and the costs per agent and
    channel: model tokens on the platform's keys at catalog prices, runtime hours at their host's hourly
    cost, outgoing WhatsApp and Telegram messages at their configured price."""
    queries = AnalyticsQueries(session)
    revenue_by_org = await queries.revenue_by_org(span)
    model_by_org = await queries.model_cost_by_org(span)
    runtime_by_org = await queries.runtime_cost_by_org(span)
    message_price = {
        "whatsapp": settings.whatsapp_message_cost_micro_usd,
        "telegram": settings.telegram_message_cost_micro_usd,
    }
    since, before = span.start.date(), span.end.date()
    outbound = await queries.outbound_by_org_and_channel(since, before)
    messaging_by_org: dict[str, int] = {}
    messaging_by_channel: dict[str, int] = {}
    for org_id, channel, count in outbound:
        cost = int(count) * message_price.get(channel, 0)
        messaging_by_org[org_id] = messaging_by_org.get(org_id, 0) + cost
        messaging_by_channel[channel] = messaging_by_channel.get(channel, 0) + cost
    orgs = set(revenue_by_org) | set(model_by_org) | set(runtime_by_org) | set(messaging_by_org)
    names = await queries.org_names(orgs)
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
    model_by_channel = await queries.model_cost_by_channel(span)
    channels: dict[str, int] = {str(c or "unknown"): _cents(int(v or 0)) for c, v in model_by_channel}
    for channel, cost in messaging_by_channel.items():
        channels[channel] = channels.get(channel, 0) + _cents(cost)
    by_agent = await queries.model_cost_by_agent(span, limit)
    return {
        "from": span.start,
        "to": span.end,
        "orgs": rows[:limit],
        "cost_by_channel_cents": dict(sorted(channels.items())),
        "model_cost_by_agent": [{"agent_id": a, "cost_cents": _cents(int(c or 0))} for a, c in by_agent],
    }
