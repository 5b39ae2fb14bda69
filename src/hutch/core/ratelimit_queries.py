"""The rate limiters' reads and writes (:mod:`hutch.core.ratelimit`): PostgreSQL's ``rate_limit_counters``
table, and Redis's counter keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis.asyncio
from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

_HIT = text(
    "INSERT INTO rate_limit_counters (key, window_start, count, expires_at) "
    "VALUES (:key, :window_start, 1, :expires_at) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + 1 "
    "RETURNING count"
)
# Several counters in one statement (one row per key; the keys differ), each with its count after the hit.
_HIT_MANY = text(
    "INSERT INTO rate_limit_counters (key, window_start, count, expires_at) "
    "SELECT hit.key, hit.window_start, 1, hit.expires_at FROM unnest("
    "CAST(:keys AS varchar[]), CAST(:window_starts AS timestamptz[]), CAST(:expires AS timestamptz[])"
    ") AS hit (key, window_start, expires_at) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + 1 "
    "RETURNING key, count"
)
# The same, then one more counter only when none of those went past its limit (``:limits``, in their order):
# the later counter (an org's minute) is not spent by an event the first ones refuse (one person's flood).
# One statement, so one round trip; the later key differs from the first ones.
_HIT_THEN = text(
    "WITH hit AS ("
    " INSERT INTO rate_limit_counters (key, window_start, count, expires_at)"
    " SELECT hit.key, hit.window_start, 1, hit.expires_at FROM unnest("
    " CAST(:keys AS varchar[]), CAST(:window_starts AS timestamptz[]), CAST(:expires AS timestamptz[])"
    " ) AS hit (key, window_start, expires_at)"
    " ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + 1"
    " RETURNING key, count"
    "), after AS ("
    " INSERT INTO rate_limit_counters (key, window_start, count, expires_at)"
    " SELECT :then_key, :then_window_start, 1, :then_expires"
    " WHERE NOT EXISTS ("
    "  SELECT 1 FROM hit JOIN unnest(CAST(:keys AS varchar[]), CAST(:limits AS integer[])) AS cap (key, lim)"
    "  ON cap.key = hit.key WHERE hit.count > cap.lim"
    " )"
    " ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_counters.count + 1"
    " RETURNING key, count"
    ") SELECT key, count FROM hit UNION ALL SELECT key, count FROM after"
)
_PEEK = text("SELECT count FROM rate_limit_counters WHERE key = :key AND window_start = :window_start")
# SKIP LOCKED lets two purges that overlap share the work instead of queueing behind each other.
_PURGE_BATCH = text(
    "DELETE FROM rate_limit_counters AS c USING ("
    " SELECT key, window_start FROM rate_limit_counters WHERE expires_at <= now()"
    " ORDER BY expires_at LIMIT :batch_size FOR UPDATE SKIP LOCKED"
    ") AS ended WHERE c.key = ended.key AND c.window_start = ended.window_start"
)


class RateCounters:
    """The counters of an engine's database, each statement on its own autocommit connection, so a counter
    never waits for (or rolls back with) a request's transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def hit(self, key: str, window_start: datetime, expires_at: datetime) -> int:
        """Count one hit in the window; the window's count after it."""
        return await self._count(_HIT, {"key": key, "window_start": window_start, "expires_at": expires_at})

    async def hit_many(self, hits: Sequence[tuple[str, datetime, datetime]]) -> dict[str, int]:
        """Count one hit on each (key, window start, expiry) in one statement, the keys locked in their
        order (callers pass them sorted, so two statements never wait on each other in a circle); each
        key's count after it."""
        values = {
            "keys": [key for key, _, _ in hits],
            "window_starts": [start for _, start, _ in hits],
            "expires": [expires for _, _, expires in hits],
        }
        return await self._counts(values, _HIT_MANY)

    async def hit_then(
        self,
        hits: Sequence[tuple[str, datetime, datetime, int]],
        then: tuple[str, datetime, datetime],
    ) -> dict[str, int]:
        """:meth:`hit_many` on ``hits`` (key, window start, expiry, limit), then one hit on ``then`` only when
        no count of ``hits`` passed its limit, in one statement (``then``'s key locked last); each counted
        key's count after it (``then``'s key is missing when it was not counted)."""
        values = {
            "keys": [key for key, _, _, _ in hits],
            "window_starts": [start for _, start, _, _ in hits],
            "expires": [expires for _, _, expires, _ in hits],
            "limits": [limit for _, _, _, limit in hits],
            "then_key": then[0],
            "then_window_start": then[1],
            "then_expires": then[2],
        }
        return await self._counts(values, _HIT_THEN)

    async def _counts(self, values: dict[str, object], statement: TextClause) -> dict[str, int]:
        try:
            return await self._key_counts(statement, values)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._key_counts(statement, values)  # once more on a fresh connection, as ``_count``

    async def _key_counts(self, statement: TextClause, values: dict[str, object]) -> dict[str, int]:
        async with self._engine.connect() as conn:
            return {key: int(count) for key, count in await conn.execute(statement, values)}

    async def count(self, key: str, window_start: datetime) -> int:
        """The window's count (0 before its first hit)."""
        return await self._count(_PEEK, {"key": key, "window_start": window_start})

    async def _count(self, statement: TextClause, values: dict[str, object]) -> int:
        try:
            return await self._execute(statement, values)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The pool has dropped the dead connection (a restarted server, a proxy timeout): one retry on
            # a fresh one. At worst a hit whose answer was lost is counted twice, erring on the strict side.
            return await self._execute(statement, values)

    async def _execute(self, statement: TextClause, values: dict[str, object]) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(statement, values)).scalar_one_or_none() or 0)


async def delete_ended_windows(session: AsyncSession, batch_size: int) -> int:
    """Delete up to ``batch_size`` counters whose window has ended; how many went."""
    result = await session.execute(_PURGE_BATCH, {"batch_size": batch_size})
    return int(result.rowcount)  # type: ignore[attr-defined]  # DML results carry rowcount


async def redis_hit(client: redis.asyncio.Redis, name: str, ttl_seconds: int) -> int:
    """Count one hit on the key ``name`` and have it expire in ``ttl_seconds``, in one ``MULTI INCR EXPIRE
    EXEC`` round trip; the count after it."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr(name)
        pipe.expire(name, ttl_seconds)
        count, _ = await pipe.execute()
    return int(count)


# INCR and EXPIRE on each of the first keys; then on the last key only when no count of the first ones
# passed its limit. ARGV: a TTL and a limit per first key, then the last key's TTL. Returns the counts,
# the last one 0 when it was not counted.
_REDIS_HIT_THEN = """
local n = #KEYS - 1
local counts = {}
local within = true
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i - 1])
  counts[i] = count
  if count > tonumber(ARGV[2 * i]) then within = false end
end
counts[n + 1] = 0
if within then
  counts[n + 1] = redis.call('INCR', KEYS[n + 1])
  redis.call('EXPIRE', KEYS[n + 1], ARGV[2 * n + 1])
end
return counts
"""


async def redis_hit_then(
    client: redis.asyncio.Redis, counters: Sequence[tuple[str, int, int]], then: tuple[str, int]
) -> tuple[list[int], int | None]:
    """:func:`redis_hit_many` on each (name, TTL, limit), then :func:`redis_hit` on ``then`` (name, TTL) only
    when no count passed its limit, in one script run (one round trip, atomic); the counts, and ``then``'s
    (None when it was not counted)."""
    keys = [name for name, _, _ in counters] + [then[0]]
    args = [value for _, ttl, limit in counters for value in (ttl, limit)] + [then[1]]
    replies = await client.eval(_REDIS_HIT_THEN, len(keys), *keys, *args)
    counts = [int(count) for count in replies]
    return counts[:-1], counts[-1] or None


async def redis_hit_many(client: redis.asyncio.Redis, counters: Sequence[tuple[str, int]]) -> list[int]:
    """:func:`redis_hit` on each (name, TTL) in one ``MULTI ... EXEC`` round trip; the counts after them."""
    async with client.pipeline(transaction=True) as pipe:
        for name, ttl_seconds in counters:
            pipe.incr(name)
            pipe.expire(name, ttl_seconds)
        replies = await pipe.execute()
    return [int(count) for count in replies[::2]]
