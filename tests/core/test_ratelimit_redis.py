"""The Redis rate limiter against a real ``redis-server``: same answers as PostgreSQL, atomic under load."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from hutch.core.ratelimit import (
    REDIS_KEY_PREFIX,
    PostgresRateLimiter,
    RateHit,
    RedisRateLimiter,
    build_rate_limiter,
    describe_redis_url,
)
from hutch.settings import Settings
from tests.clock import TEST_CLOCK, wait_for_a_fresh_minute
from tests.conftest import TEST_SECRET_KEY, make_settings
from tests.fakes.server import free_port

REDIS_SERVER = "redis-server"


class RedisServer:
    """A throw-away ``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="hutch-test-redis-")
        self._log = Path(self._dir.name) / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self._dir.name,
                    "--loglevel", "warning",
                ],
                stdout=log,  # redis-server logs to stdout
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        try:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self._log.read_text()}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisRateLimiter]:
    limiter = RedisRateLimiter.from_url(redis_server.url, clock=TEST_CLOCK)
    yield limiter
    await limiter.aclose()


def fresh_key() -> str:
    return f"test:{secrets.token_hex(6)}"


async def test_allows_up_to_the_limit_then_says_when_to_retry(limiter: RedisRateLimiter) -> None:
    key = fresh_key()
    decisions = [await limiter.hit(key, limit=3, window_seconds=60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.count for d in decisions] == [1, 2, 3, 4, 5]
    assert all(d.retry_after == 0 for d in decisions[:3])
    assert all(1 <= d.retry_after <= 60 for d in decisions[3:])


async def test_hit_many_counts_each_window_in_one_round_trip(limiter: RedisRateLimiter) -> None:
    minute, day = fresh_key(), fresh_key()
    rounds = [await limiter.hit_many([RateHit(minute, 2, 60), RateHit(day, 3, 86_400)]) for _ in range(4)]
    assert [[d.allowed for d in decisions] for decisions in rounds] == [
        [True, True],
        [True, True],
        [False, True],
        [False, False],
    ]
    assert [d.count for d in rounds[3]] == [4, 4] and 1 <= rounds[3][0].retry_after <= 60
    assert (await limiter.peek(minute, 2, 60)).count == 4  # the same counters as hit's


async def test_hit_then_counts_the_last_counter_only_while_the_first_ones_allow(
    limiter: RedisRateLimiter,
) -> None:
    minute, day, org = fresh_key(), fresh_key(), fresh_key()
    rounds = [
        await limiter.hit_then([RateHit(minute, 2, 60), RateHit(day, 5, 86_400)], RateHit(org, 10, 60))
        for _ in range(4)
    ]
    assert [[d.count for d in decisions] for decisions, _ in rounds] == [[1, 1], [2, 2], [3, 3], [4, 4]]
    assert [then.count if then else None for _, then in rounds] == [1, 2, None, None]
    assert not rounds[2][0][0].allowed and 1 <= rounds[2][0][0].retry_after <= 60
    assert (await limiter.peek(org, 10, 60)).count == 2  # the refused person spent none of it
    _, past = await limiter.hit_then([RateHit(fresh_key(), 5, 60)], RateHit(org, 2, 60))
    assert past is not None and not past.allowed and 1 <= past.retry_after <= 60


async def test_peek_counts_nothing(limiter: RedisRateLimiter) -> None:
    key = fresh_key()
    assert (await limiter.peek(key, limit=2, window_seconds=60)).allowed
    for _ in range(5):
        await limiter.peek(key, limit=2, window_seconds=60)
    assert (await limiter.hit(key, limit=2, window_seconds=60)).count == 1
    await limiter.hit(key, limit=2, window_seconds=60)
    peek = await limiter.peek(key, limit=2, window_seconds=60)
    assert not peek.allowed and peek.count == 2 and peek.retry_after >= 1
    assert (await limiter.peek(key, limit=2, window_seconds=60)).count == 2


async def test_concurrent_hits_allow_exactly_the_limit(limiter: RedisRateLimiter) -> None:
    key = fresh_key()
    decisions = await asyncio.gather(*(limiter.hit(key, limit=10, window_seconds=60) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.count for d in decisions) == list(range(1, 41))


async def test_two_limiters_share_one_counter(redis_server: RedisServer, limiter: RedisRateLimiter) -> None:
    other = RedisRateLimiter.from_url(redis_server.url, clock=TEST_CLOCK)  # as another process would hold it
    try:
        key = fresh_key()
        await asyncio.gather(*(lim.hit(key, 5, 60) for lim in (limiter, other) for _ in range(3)))
        assert not (await other.peek(key, 5, 60)).allowed
    finally:
        await other.aclose()


async def test_keys_are_namespaced_and_expire_with_their_window(
    redis_server: RedisServer, limiter: RedisRateLimiter
) -> None:
    key = fresh_key()
    await limiter.hit(key, limit=5, window_seconds=2)
    client = redis.Redis.from_url(redis_server.url)
    try:
        names = [n.decode() for n in client.scan_iter(f"{REDIS_KEY_PREFIX}{key}:*")]
        assert len(names) == 1
        assert 0 < client.ttl(names[0]) <= 3
    finally:
        client.close()


async def test_a_window_ends_and_the_next_one_starts_empty(limiter: RedisRateLimiter) -> None:
    key = fresh_key()
    assert (await limiter.hit(key, limit=1, window_seconds=1)).allowed
    blocked = await limiter.hit(key, limit=1, window_seconds=1)
    if blocked.allowed:  # the first hit was the last of its window; the second opened a new one
        blocked = await limiter.hit(key, limit=1, window_seconds=1)
    assert not blocked.allowed and blocked.retry_after == 1
    await asyncio.sleep(1.05)
    assert (await limiter.hit(key, limit=1, window_seconds=1)).allowed


@pytest.mark.parametrize("redis_url", [None, ""], ids=["unset", "empty"])
async def test_without_a_redis_url_hits_are_counted_in_postgresql(
    redis_url: str | None, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, tmp_path, redis_url=None if redis_url is None else SecretStr(redis_url)
    )
    key = fresh_key()
    limiter = build_rate_limiter(settings, engine)  # on real time, as its peek below
    await asyncio.sleep(wait_for_a_fresh_minute(5))
    try:
        await limiter.hit(key, 5, 60)
    finally:
        await limiter.aclose()
    assert (await PostgresRateLimiter(engine).peek(key, 5, 60)).count == 1


async def test_with_a_redis_url_hits_are_counted_in_redis(
    redis_server: RedisServer, engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, redis_url=SecretStr(redis_server.url))
    key = fresh_key()
    built = build_rate_limiter(settings, engine)  # on real time, as the peeks below
    await asyncio.sleep(wait_for_a_fresh_minute(5))
    try:
        await built.hit(key, 5, 60)
        assert (await built.peek(key, 5, 60)).count == 1
    finally:
        await built.aclose()
    assert isinstance(built, RedisRateLimiter)
    assert (await PostgresRateLimiter(engine).peek(key, 5, 60)).count == 0


def test_redis_url_password_is_hidden_in_messages() -> None:
    assert describe_redis_url("redis://:s3cret@cache:6380/1") == "redis://:***@cache:6380/1"
    assert describe_redis_url("rediss://app:s3cret@cache/0") == "rediss://app:***@cache/0"
    assert describe_redis_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_serve_with_unreachable_redis_exits_1_with_one_line(database_url: str, settings: Settings) -> None:
    closed_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=database_url,
        HUTCH_DATA_DIR=str(settings.data_dir),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_REDIS_URL=f"redis://:pw-do-not-show@127.0.0.1:{closed_port}/0",
    )
    result = subprocess.run(
        [sys.executable, "-m", "hutch.cli", "serve", "--no-worker", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"Cannot connect to Redis at redis://:***@127.0.0.1:{closed_port}/0" in result.stderr
    assert "check HUTCH_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "pw-do-not-show" not in result.stderr + result.stdout
