"""Race-free quota primitives, shared by every domain that counts against a limit.

Two shapes: *counted* resources (agents, documents, runtimes) are checked under a lock on the org's row,
so concurrent creates in one org queue up and exactly ``limit`` succeed; *metered* events (messages) are
reserved with one conditional upsert on a counter row, which PostgreSQL applies atomically. Both run in
the caller's transaction, so a request that fails later gives its reservation back by rolling back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

# The statements live in quota_queries; every domain keeps reaching them here.
from hutch.core.quota_queries import lock_org, reserve_statement

__all__ = ["lock_org", "month_start", "reserve_statement", "seconds_until_next_day", "utc_day"]


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def month_start(moment: datetime) -> date:
    return utc_day(moment).replace(day=1)


def seconds_until_next_day(moment: datetime) -> int:
    now = moment.astimezone(UTC)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, int((tomorrow - now).total_seconds()) + 1)
