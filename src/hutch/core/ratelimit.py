"""Fixed-window rate limits that hold across processes and machines.

Each hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on PostgreSQL, run on its own
autocommit connection so the counter never waits for (or rolls back with) the request's transaction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window resets (0 when allowed)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit and say whether it is within ``limit`` per window."""
        ...

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Say whether the next hit would be allowed, without counting it."""
        ...


def _window(window_seconds: int, now: float) -> tuple[datetime, int]:
    start = math.floor(now / window_seconds) * window_seconds
    retry_after = max(1, math.ceil(start + window_seconds - now))
    return datetime.fromtimestamp(start, UTC), retry_after


_HIT = text(
    "INSERT INTO rate_limit_counters (key, window_start, count, expires_at) "
    "VALUES (:key, :window_start, 1, :expires_at) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + 1 "
    "RETURNING count"
)
_PEEK = text("SELECT count FROM rate_limit_counters WHERE key = :key AND window_start = :window_start")


class PostgresRateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        window_start, retry_after = _window(window_seconds, time.time())
        async with self._engine.connect() as conn:
            count = int(
                (
                    await conn.execute(
                        _HIT,
                        {
                            "key": key,
                            "window_start": window_start,
                            "expires_at": window_start + timedelta(seconds=window_seconds),
                        },
                    )
                ).scalar_one()
            )
        allowed = count <= limit
        return RateDecision(allowed, count, limit, 0 if allowed else retry_after)

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        window_start, retry_after = _window(window_seconds, time.time())
        async with self._engine.connect() as conn:
            count = int(
                (await conn.execute(_PEEK, {"key": key, "window_start": window_start})).scalar_one_or_none()
                or 0
            )
        allowed = count < limit
        return RateDecision(allowed, count, limit, 0 if allowed else retry_after)
