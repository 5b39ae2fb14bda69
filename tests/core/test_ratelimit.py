"""The PostgreSQL rate limiter counts atomically, even with many concurrent hits; ended windows are purged."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hutch.core.ratelimit import PostgresRateLimiter, RateHit, purge_ended_windows
from hutch.db.jobs import HOUSEKEEPING_QUEUE, registry
from hutch.resources import Resources
from tests.clock import TEST_CLOCK
from tests.conftest import RecordingJobQueue, statements_on


async def test_allows_up_to_the_limit_then_says_when_to_retry(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    key = f"test:{secrets.token_hex(6)}"
    decisions = [await limiter.hit(key, limit=3, window_seconds=60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[3].count == 4
    assert 1 <= decisions[3].retry_after <= 60
    peek = await limiter.peek(key, limit=3, window_seconds=60)
    assert not peek.allowed and peek.count == 5  # peeking counts nothing


async def test_concurrent_hits_never_exceed_the_limit(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    key = f"test:{secrets.token_hex(6)}"
    decisions = await asyncio.gather(*(limiter.hit(key, limit=10, window_seconds=60) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.count for d in decisions) == list(range(1, 41))


async def test_hit_many_counts_each_window_in_one_statement(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    minute, day = f"test:{secrets.token_hex(6)}:60", f"test:{secrets.token_hex(6)}:86400"
    with statements_on(engine) as statements:
        rounds = [await limiter.hit_many([RateHit(minute, 2, 60), RateHit(day, 3, 86_400)]) for _ in range(4)]
    assert len(statements) == 4  # one per call, both windows in it
    assert [[d.allowed for d in decisions] for decisions in rounds] == [
        [True, True],
        [True, True],
        [False, True],
        [False, False],
    ]
    assert [d.count for d in rounds[3]] == [4, 4] and 1 <= rounds[3][0].retry_after <= 60
    now = datetime.fromtimestamp(TEST_CLOCK(), UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    # The day's window ends at midnight UTC (a minute window may end sooner or later than it).
    assert abs(rounds[3][1].retry_after - (midnight - now).total_seconds()) <= 2
    assert (await limiter.peek(minute, 2, 60)).count == 4  # the same counters as hit's


async def test_hit_then_counts_the_last_counter_only_while_the_first_ones_allow(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    person, org = f"test:{secrets.token_hex(6)}", f"test:{secrets.token_hex(6)}"
    with statements_on(engine) as statements:
        rounds = [await limiter.hit_then([RateHit(person, 2, 60)], RateHit(org, 10, 60)) for _ in range(4)]
    assert len(statements) == 4  # one round trip each
    assert [decisions[0].count for decisions, _ in rounds] == [1, 2, 3, 4]
    assert [then.count if then else None for _, then in rounds] == [1, 2, None, None]
    assert (await limiter.peek(org, 10, 60)).count == 2  # the refused person spent none of it
    _, past = await limiter.hit_then([RateHit(f"test:{secrets.token_hex(6)}", 5, 60)], RateHit(org, 2, 60))
    assert past is not None and not past.allowed and past.count == 3


async def test_concurrent_hit_then_keeps_both_counts_exact(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    people = [f"test:{secrets.token_hex(6)}" for _ in range(4)]
    org = f"test:{secrets.token_hex(6)}"
    results = await asyncio.gather(
        *(limiter.hit_then([RateHit(people[i % 4], 5, 60)], RateHit(org, 100, 60)) for i in range(40))
    )
    assert sum(then is not None for _, then in results) == 20  # five of each person's ten
    assert (await limiter.peek(org, 100, 60)).count == 20


async def test_keys_longer_than_the_column_count_apart(engine: AsyncEngine) -> None:
    # Keys carry what callers send (the email a login names): two long ones differing only at the end
    limiter = PostgresRateLimiter(engine, clock=TEST_CLOCK)
    head = f"login:email:{secrets.token_hex(6)}" + "0" * 400
    first = [await limiter.hit(head + "a", limit=2, window_seconds=60) for _ in range(3)]
    assert [d.allowed for d in first] == [True, True, False]
    assert (await limiter.hit(head + "b", limit=2, window_seconds=60)).count == 1
    assert (await limiter.peek(head + "a", limit=2, window_seconds=60)).count == 3


async def test_own_pool_keeps_counting_after_its_connection_is_killed(engine: AsyncEngine) -> None:
    limiter = PostgresRateLimiter.with_own_pool(engine.url, clock=TEST_CLOCK)
    key = f"test:{secrets.token_hex(6)}"
    try:
        assert (await limiter.hit(key, limit=3, window_seconds=60)).count == 1
        async with engine.connect() as conn:  # what a database restart or a proxy timeout does to it
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'hutch-ratelimit' AND datname = current_database()"
                )
            )
        assert killed >= 1
        assert (await limiter.hit(key, limit=3, window_seconds=60)).count == 2
        assert (await limiter.peek(key, limit=3, window_seconds=60)).count == 2
    finally:
        await limiter.aclose()


# --- purging ended windows ----------------------------------------------------------------------------


async def _insert_windows(session: AsyncSession, prefix: str, count: int, expires_in: timedelta) -> None:
    now = datetime.now(UTC)
    await session.execute(
        text(
            "INSERT INTO rate_limit_counters (key, window_start, count, expires_at) "
            "VALUES (:key, :window_start, 1, :expires_at)"
        ),
        [
            {
                "key": f"{prefix}:{n}",
                "window_start": now + expires_in - timedelta(minutes=1),
                "expires_at": now + expires_in,
            }
            for n in range(count)
        ],
    )


async def _keys_with_prefix(session: AsyncSession, prefix: str) -> set[str]:
    rows = await session.scalars(
        text("SELECT key FROM rate_limit_counters WHERE key LIKE :p"), {"p": f"{prefix}:%"}
    )
    return set(rows.all())


async def test_purge_job_deletes_ended_windows_and_keeps_current_ones(
    resources: Resources, session: AsyncSession
) -> None:
    prefix = f"purge:{secrets.token_hex(4)}"
    await _insert_windows(session, f"{prefix}:ended", 3, timedelta(minutes=-5))
    await _insert_windows(session, f"{prefix}:current", 2, timedelta(seconds=30))
    await session.commit()
    jobs = resources.jobs
    assert isinstance(jobs, RecordingJobQueue) and jobs.worker_resources is not None
    deleted = await jobs.execute(
        "hutch.purge_rate_limit_windows",
        {"timestamp": 0},
        job_id=1,
        attempt=0,
        resources=jobs.worker_resources,
    )
    assert deleted >= 3  # windows other tests left behind may end up purged too
    assert await _keys_with_prefix(session, prefix) == {f"{prefix}:current:0", f"{prefix}:current:1"}


async def test_purge_works_through_a_backlog_in_batches(session: AsyncSession) -> None:
    prefix = f"purge:{secrets.token_hex(4)}"
    await purge_ended_windows(session, batch_size=1000, max_batches=1000)  # what earlier tests left
    await _insert_windows(session, prefix, 25, timedelta(minutes=-1))
    # Two batches of 10 leave the rest for the next run ...
    assert await purge_ended_windows(session, batch_size=10, max_batches=2) == 20
    assert len(await _keys_with_prefix(session, prefix)) == 5
    # ... which stops at the first batch that is not full.
    assert await purge_ended_windows(session, batch_size=10, max_batches=100) == 5
    assert await _keys_with_prefix(session, prefix) == set()


def test_purge_job_is_a_housekeeping_job_every_ten_minutes() -> None:
    spec = registry.specs["hutch.purge_rate_limit_windows"]
    assert (spec.cron, spec.queue, spec.retry) == ("*/10 * * * *", HOUSEKEEPING_QUEUE, False)
