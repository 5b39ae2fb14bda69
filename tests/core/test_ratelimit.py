"""The PostgreSQL rate limiter counts atomically, even with many concurrent hits."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy.ext.asyncio import AsyncEngine

from hutch.core.ratelimit import PostgresRateLimiter


async def test_allows_up_to_the_limit_then_says_when_to_retry(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine)
    key = f"test:{secrets.token_hex(6)}"
    decisions = [await limiter.hit(key, limit=3, window_seconds=60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[3].count == 4
    assert 1 <= decisions[3].retry_after <= 60
    peek = await limiter.peek(key, limit=3, window_seconds=60)
    assert not peek.allowed and peek.count == 5  # peeking counts nothing


async def test_concurrent_hits_never_exceed_the_limit(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine)
    key = f"test:{secrets.token_hex(6)}"
    decisions = await asyncio.gather(*(limiter.hit(key, limit=10, window_seconds=60) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.count for d in decisions) == list(range(1, 41))
