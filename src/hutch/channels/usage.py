"""Daily message counts per agent and channel: one upsert per count, read back for the owner's charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.models import ChannelUsageDaily
from hutch.core.quota import utc_day
from hutch.db.carried import Carried


async def count_messages(
    session: AsyncSession, org_id: str, agent_id: str, channel: str, *, inbound: int = 0, outbound: int = 0
) -> None:
    """Add to today's counts; runs in the caller's transaction, so a rolled-back turn counts nothing."""
    if inbound == 0 and outbound == 0:
        return
    stmt = insert(ChannelUsageDaily).values(
        agent_id=agent_id,
        channel=channel,
        day=utc_day(datetime.now(UTC)),
        org_id=org_id,
        inbound=inbound,
        outbound=outbound,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ChannelUsageDaily.agent_id, ChannelUsageDaily.channel, ChannelUsageDaily.day],
            set_={
                "inbound": ChannelUsageDaily.inbound + stmt.excluded.inbound,
                "outbound": ChannelUsageDaily.outbound + stmt.excluded.outbound,
            },
        )
    )


_COUNTED = (
    text(
        "INSERT INTO channel_usage_daily (agent_id, channel, day, org_id, inbound, outbound) VALUES "
        "(:count_agent_id, :count_channel, :count_day, :count_org_id, :count_inbound, :count_outbound) "
        "ON CONFLICT (agent_id, channel, day) DO UPDATE SET "
        "inbound = channel_usage_daily.inbound + EXCLUDED.inbound, "
        "outbound = channel_usage_daily.outbound + EXCLUDED.outbound RETURNING day"
    )
    .columns()
    .cte("channel_counted")
)


def counted_messages(
    org_id: str, agent_id: str, channel: str, *, inbound: int = 0, outbound: int = 0
) -> Carried:
    """:func:`count_messages` for another statement to carry: the day's row of a busy bot is locked only
    while that one statement runs, never across a round trip to the client."""
    return Carried(
        (_COUNTED,),
        params={
            "count_agent_id": agent_id,
            "count_channel": channel,
            "count_day": utc_day(datetime.now(UTC)),
            "count_org_id": org_id,
            "count_inbound": inbound,
            "count_outbound": outbound,
        },
    )


@dataclass(frozen=True)
class DayCount:
    day: date
    channel: str
    inbound: int
    outbound: int


async def daily_counts(session: AsyncSession, agent_id: str, days: int) -> list[DayCount]:
    """The agent's counts for the last ``days`` UTC days (today included), newest first."""
    since = utc_day(datetime.now(UTC)) - timedelta(days=days - 1)
    rows = await session.execute(
        select(
            ChannelUsageDaily.day,
            ChannelUsageDaily.channel,
            ChannelUsageDaily.inbound,
            ChannelUsageDaily.outbound,
        )
        .where(ChannelUsageDaily.agent_id == agent_id, ChannelUsageDaily.day >= since)
        .order_by(ChannelUsageDaily.day.desc(), ChannelUsageDaily.channel)
    )
    return [DayCount(*row) for row in rows.all()]
