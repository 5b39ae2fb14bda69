"""Fixed-window rate limits that hold across processes and machines.

Two stores keep the counters, with the same windows and the same answers:

* PostgreSQL (the default): each hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, run
  on its own autocommit connection so the counter never waits for (or rolls back with) the request's
  transaction. Ended windows are deleted by the periodic ``hutch.purge_rate_limit_windows`` job. At
  start-up the limiter gets a small pool of its own, tuned for these one-statement transactions.
* Redis (``HUTCH_REDIS_URL``): each hit is one ``MULTI INCR EXPIRE EXEC`` round trip; keys expire with
  their window.

Several counters of one event (a person's minute and day) are counted by ``hit_many`` in one round trip:
one statement upserting their rows, or one ``MULTI`` of their ``INCR``/``EXPIRE`` pairs. ``hit_then`` adds
one counter counted only when those allow (the org's rate after the person's), in the same round trip: one
statement, or one Lua script. Every process of
a deployment (API and job workers) counts in the same store: :func:`build_rate_limiter` decides it.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from hutch.core.errors import StartupError
from hutch.core.ratelimit_queries import (
    RateCounters,
    delete_ended_windows,
    redis_hit,
    redis_hit_many,
    redis_hit_then,
)
from hutch.settings import Settings

REDIS_KEY_PREFIX = "hutch:rl:"
# A limiter sits on every authenticated request: a Redis that stops answering should fail requests
# quickly rather than hold them.
REDIS_TIMEOUT_SECONDS = 2.0
REDIS_STARTUP_TIMEOUT_SECONDS = 5.0

# Epoch seconds now. Windows are fixed, so a caller that must not straddle one's end (a test counting to
# its limit) can give a limiter a clock of its own.
Clock = Callable[[], float]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window resets (0 when allowed)


@dataclass(frozen=True)
class RateHit:
    """One counter a :meth:`RateLimiter.hit_many` counts: ``limit`` per window of ``window_seconds``."""

    key: str
    limit: int
    window_seconds: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit and say whether it is within ``limit`` per window."""
        ...

    async def hit_many(self, hits: Sequence[RateHit]) -> list[RateDecision]:
        """:meth:`hit` on each counter (distinct keys), all in one round trip; the decisions in order."""
        ...

    async def hit_then(
        self, hits: Sequence[RateHit], then: RateHit
    ) -> tuple[list[RateDecision], RateDecision | None]:
        """:meth:`hit_many` on ``hits``, then :meth:`hit` on ``then`` only when every one of them is allowed
        (a person's counters before the org's: a person refused spends none of the org's rate), all in one
        round trip; ``then``'s decision is None when it was not counted."""
        ...

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Say whether the next hit would be allowed, without counting it."""
        ...

    async def aclose(self) -> None:
        """Let go of the store's connections (a pool of the limiter's own, a Redis client)."""
        ...


KEY_LENGTH = 200  # rate_limit_counters.key


def stored_key(key: str) -> str:
    """``key`` as the counters' column can hold it. Keys carry what callers send (the email a login
    names, an end user's id), which may be longer than the column: those keep a readable head and a
    digest of the whole, so two long keys never share a counter."""
    if len(key) <= KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: KEY_LENGTH - len(digest) - 1]}#{digest}"


def _window_bounds(window_seconds: int, now: float) -> tuple[int, int]:
    """The current window's start (epoch seconds) and the whole seconds until it ends (at least 1)."""
    start = math.floor(now / window_seconds) * window_seconds
    return start, max(1, math.ceil(start + window_seconds - now))


def _window_row(hit: RateHit, now: float) -> tuple[str, datetime, datetime, int]:
    """The counter row ``hit`` counts at ``now``: its stored key, window start and expiry, and the whole
    seconds until the window ends."""
    start, retry_after = _window_bounds(hit.window_seconds, now)
    window_start = datetime.fromtimestamp(start, UTC)
    return (
        stored_key(hit.key),
        window_start,
        window_start + timedelta(seconds=hit.window_seconds),
        retry_after,
    )


def _decide_hit(count: int, limit: int, retry_after: int) -> RateDecision:
    allowed = count <= limit
    return RateDecision(allowed, count, limit, 0 if allowed else retry_after)


def _decide_peek(count: int, limit: int, retry_after: int) -> RateDecision:
    allowed = count < limit
    return RateDecision(allowed, count, limit, 0 if allowed else retry_after)


# --- PostgreSQL ---------------------------------------------------------------------------------------


class PostgresRateLimiter:
    """Counters in the ``rate_limit_counters`` table: right across every process on the database.

    ``PostgresRateLimiter(engine)`` borrows connections from ``engine``; :meth:`with_own_pool` (what the
    app uses) opens a small pool that makes each hit about three times cheaper and is closed by
    :meth:`aclose`.
    """

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False, clock: Clock = time.time) -> None:
        self._counters = RateCounters(engine)
        self._owned = engine if owns_engine else None
        self._clock = clock

    @classmethod
    def with_own_pool(
        cls, url: URL, *, pool_size: int = 5, max_overflow: int = 5, clock: Clock = time.time
    ) -> PostgresRateLimiter:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # No ping before each use (three extra round trips per hit); a statement that meets a dead
            # connection is retried once on a fresh one, and recycling bounds how long one can go stale.
            pool_pre_ping=False,
            pool_recycle=1800,
            hide_parameters=True,  # a key may carry an email or an address: no values in error messages
            connect_args={
                "server_settings": {
                    "application_name": "hutch-ratelimit",
                    # Skips the WAL flush each hit would wait for; a crash can lose only the last
                    # fraction of a second of counts, which a rate limit can afford.
                    "synchronous_commit": "off",
                }
            },
        )
        return cls(engine, owns_engine=True, clock=clock)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        stored, window_start, expires_at, retry_after = _window_row(
            RateHit(key, limit, window_seconds), self._clock()
        )
        return _decide_hit(await self._counters.hit(stored, window_start, expires_at), limit, retry_after)

    async def hit_many(self, hits: Sequence[RateHit]) -> list[RateDecision]:
        now = self._clock()
        rows = [_window_row(hit, now) for hit in hits]
        # One order for every caller: no deadlock.
        counts = await self._counters.hit_many(
            sorted((key, start, expires) for key, start, expires, _ in rows)
        )
        return [
            _decide_hit(counts[key], hit.limit, retry_after)
            for (key, _, _, retry_after), hit in zip(rows, hits, strict=True)
        ]

    async def hit_then(
        self, hits: Sequence[RateHit], then: RateHit
    ) -> tuple[list[RateDecision], RateDecision | None]:
        now = self._clock()
        rows = [_window_row(hit, now) for hit in hits]
        then_key, then_start, then_expires, then_retry = _window_row(then, now)
        counts = await self._counters.hit_then(
            sorted(
                (key, start, expires, hit.limit)
                for (key, start, expires, _), hit in zip(rows, hits, strict=True)
            ),
            (then_key, then_start, then_expires),
        )
        decisions = [
            _decide_hit(counts[key], hit.limit, retry_after)
            for (key, _, _, retry_after), hit in zip(rows, hits, strict=True)
        ]
        then_count = counts.get(then_key)
        return decisions, None if then_count is None else _decide_hit(then_count, then.limit, then_retry)

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        start, retry_after = _window_bounds(window_seconds, self._clock())
        count = await self._counters.count(stored_key(key), datetime.fromtimestamp(start, UTC))
        return _decide_peek(count, limit, retry_after)

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.dispose()


async def purge_ended_windows(session: AsyncSession, *, batch_size: int, max_batches: int) -> int:
    """Delete counters whose window has ended, ``batch_size`` rows per statement; return how many went.

    Batches keep each statement short; ``max_batches`` bounds one call's transaction, and whatever is left
    waits for the next call.
    """
    deleted = 0
    for _ in range(max_batches):
        batch = await delete_ended_windows(session, batch_size)
        deleted += batch
        if batch < batch_size:
            break
    return deleted


# --- Redis --------------------------------------------------------------------------------------------


class RedisRateLimiter:
    """Counters in Redis under ``hutch:rl:<key>:<window start>``, for request rates where a PostgreSQL
    round trip per request is too dear. Same windows and answers as :class:`PostgresRateLimiter`.
    """

    def __init__(self, client: redis.asyncio.Redis, *, clock: Clock = time.time) -> None:
        self._client = client
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = time.time) -> RedisRateLimiter:
        return cls(
            redis.asyncio.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            ),
            clock=clock,
        )

    @staticmethod
    def _name(key: str, window_start: int) -> str:
        return f"{REDIS_KEY_PREFIX}{key}:{window_start}"

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        start, retry_after = _window_bounds(window_seconds, self._clock())
        name = self._name(key, start)
        # A TTL relative to Redis's own clock: a clock difference between this machine and Redis can
        # neither drop a live window nor keep an ended one long (the window start is in the name).
        count = await redis_hit(self._client, name, retry_after + 1)
        return _decide_hit(count, limit, retry_after)

    async def hit_many(self, hits: Sequence[RateHit]) -> list[RateDecision]:
        now = self._clock()
        bounds = [_window_bounds(hit.window_seconds, now) for hit in hits]
        names = [
            (self._name(hit.key, start), retry_after + 1)
            for hit, (start, retry_after) in zip(hits, bounds, strict=True)
        ]
        counts = await redis_hit_many(self._client, names)
        return [
            _decide_hit(count, hit.limit, retry_after)
            for count, hit, (_, retry_after) in zip(counts, hits, bounds, strict=True)
        ]

    async def hit_then(
        self, hits: Sequence[RateHit], then: RateHit
    ) -> tuple[list[RateDecision], RateDecision | None]:
        now = self._clock()
        bounds = [_window_bounds(hit.window_seconds, now) for hit in hits]
        then_start, then_retry = _window_bounds(then.window_seconds, now)
        counts, then_count = await redis_hit_then(
            self._client,
            [
                (self._name(hit.key, start), retry_after + 1, hit.limit)
                for hit, (start, retry_after) in zip(hits, bounds, strict=True)
            ],
            (self._name(then.key, then_start), then_retry + 1),
        )
        decisions = [
            _decide_hit(count, hit.limit, retry_after)
            for count, hit, (_, retry_after) in zip(counts, hits, bounds, strict=True)
        ]
        return decisions, None if then_count is None else _decide_hit(then_count, then.limit, then_retry)

    async def peek(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        start, retry_after = _window_bounds(window_seconds, self._clock())
        value = await self._client.get(self._name(key, start))
        return _decide_peek(int(value or 0), limit, retry_after)

    async def aclose(self) -> None:
        await self._client.aclose()


def describe_redis_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis(url: str) -> None:
    """Raise :class:`StartupError` in one sentence unless Redis at ``url`` answers a PING."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_STARTUP_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_STARTUP_TIMEOUT_SECONDS,
        )
    except ValueError as exc:  # an unknown scheme or a malformed URL
        raise StartupError(f"HUTCH_REDIS_URL is not a usable Redis URL ({exc}).") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StartupError(
            f"Cannot connect to Redis at {describe_redis_url(url)} ({reason.rstrip('.')}); "
            "check HUTCH_REDIS_URL."
        ) from None
    finally:
        client.close()


def configured_redis_url(settings: Settings) -> str | None:
    """``HUTCH_REDIS_URL``, with an empty value meaning unset."""
    url = settings.redis_url.get_secret_value().strip() if settings.redis_url is not None else ""
    return url or None


def build_rate_limiter(
    settings: Settings, engine: AsyncEngine, *, pool_size: int = 5, max_overflow: int = 5
) -> PostgresRateLimiter | RedisRateLimiter:
    """Redis when ``HUTCH_REDIS_URL`` is set, else PostgreSQL (which every deployment already has): the same
    store in every process, so API processes and workers count together. PostgreSQL's counters get a small
    pool of their own (``pool_size`` + ``max_overflow`` connections at most, on ``engine``'s database): a
    hit on it is one round trip, where one on ``engine``'s shared pool costs about half a millisecond more."""
    url = configured_redis_url(settings)
    if url is not None:
        return RedisRateLimiter.from_url(url)
    return PostgresRateLimiter.with_own_pool(engine.url, pool_size=pool_size, max_overflow=max_overflow)
