"""Daily message counts per agent and channel: one upsert per count, read back for the owner's charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.repository import ChannelUsageRepository
from hutch.core.quota import utc_day
from hutch.db.carried import Carried


async def count_messages(
    session: AsyncSession, org_id: str, agent_id: str, channel: str, *, inbound: int = 0, outbound: int = 0
) -> None:
    """Add to today's counts; runs in the caller's transaction, so a rolled-back turn counts nothing."""
    if inbound == 0 and outbound == 0:
        return
    await ChannelUsageRepository(session).add(
        org_id, agent_id, channel, utc_day(datetime.now(UTC)), inbound=inbound, outbound=outbound
    )


def counted_messages(
    org_id: str, agent_id: str, channel: str, *, inbound: int = 0, outbound: int = 0
) -> Carried:
    """:func:`count_messages` for another statement to carry: the day's row of a busy bot is locked only
    while that one statement runs, never across a round trip to the client."""
    return ChannelUsageRepository.added_carried(
        org_id, agent_id, channel, utc_day(datetime.now(UTC)), inbound=inbound, outbound=outbound
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
    return [DayCount(*row) for row in await ChannelUsageRepository(session).since(agent_id, since)]
