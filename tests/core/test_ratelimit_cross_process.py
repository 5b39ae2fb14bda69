"""One API key's rate limit holds across two separate ``hutch serve`` processes sharing a database; one
person's limit holds across an API process and a job worker, as each builds its resources.

If either process counted on its own, 20 of the 30 requests would pass instead of 10.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from hutch.billing.quotas import EndUserRateLimited, Person
from hutch.core.ids import new_id
from hutch.core.metrics import Metrics
from hutch.core.ratelimit import PostgresRateLimiter, RedisRateLimiter, build_rate_limiter
from hutch.db import migrations
from hutch.db.engine import Database, unit_of_work
from hutch.db.jobs import WorkerResources
from hutch.resources import build_worker_resources
from hutch.turns.flow import TurnFlow
from tests.clock import wait_for_a_fresh_minute
from tests.conftest import TEST_SECRET_KEY, PostgresServer, make_settings
from tests.core.test_ratelimit_redis import RedisServer, free_port

LIMIT = 10
REQUESTS = 30
# Fewer seconds than this left in the current minute: wait for the next window, so that all requests
# (which take well under a second) land in one window.
MIN_SECONDS_LEFT_IN_WINDOW = 15


class ApiProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hutch.cli", "serve", "--no-worker", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hutch serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"hutch serve did not become ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def redis_for_processes() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _start_two(env: dict[str, str], tmp_path: Path) -> list[ApiProcess]:
    processes = [ApiProcess(env, tmp_path / f"serve-{n}.log") for n in range(2)]
    try:
        for api in processes:
            api.wait_ready()
    except BaseException:
        for api in processes:
            api.stop()
        raise
    return processes


@pytest.mark.slow
@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_an_api_key_limit_holds_across_two_api_processes(
    store: str, postgres: PostgresServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = postgres.create_database("hutch_rl")
    migrations.upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_ENV="test",
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(tmp_path / "data"),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_LOG_LEVEL="WARNING",
    )
    if store == "redis":
        env["HUTCH_REDIS_URL"] = request.getfixturevalue("redis_for_processes").url
    first, second = processes = _start_two(env, tmp_path)
    try:
        signup = httpx.post(
            f"{first.url}/api/v1/auth/signup",
            json={"email": f"owner-{store}@example.com", "password": "correct horse battery"},
            timeout=10,
        )
        assert signup.status_code == 201, signup.text
        created = httpx.post(
            f"{second.url}/api/v1/api-keys",
            json={"label": "limited", "rate_limit_per_minute": LIMIT},
            headers={"Authorization": f"Bearer {signup.json()['access_token']}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        headers = {"X-API-Key": created.json()["key"]}

        time.sleep(wait_for_a_fresh_minute(MIN_SECONDS_LEFT_IN_WINDOW))
        answers: list[tuple[int, int, str | None]] = []  # (process, status, Retry-After)
        with httpx.Client(timeout=10, headers=headers) as client:
            for n in range(REQUESTS):
                api = processes[n % 2]
                response = client.get(f"{api.url}/api/v1/api-keys/current")
                answers.append((n % 2, response.status_code, response.headers.get("Retry-After")))
    finally:
        for api in processes:
            api.stop()

    statuses = [status for _, status, _ in answers]
    assert statuses == [200] * LIMIT + [429] * (REQUESTS - LIMIT), answers
    assert {api for api, status, _ in answers if status == 200} == {0, 1}  # both processes let some through
    assert {api for api, status, _ in answers if status == 429} == {0, 1}  # and both refuse the rest
    retry_afters = [int(value) for _, status, value in answers if status == 429 and value is not None]
    assert len(retry_afters) == REQUESTS - LIMIT
    assert all(1 <= seconds <= 60 for seconds in retry_afters)


async def _admitted(resources: WorkerResources, agent_id: str, person: str) -> bool:
    """One message of ``person`` through a turn's admission on ``resources``, as the process would run it
    (3 a minute, 5 a day)."""
    async with unit_of_work(resources.database, None) as uow:
        try:
            await TurnFlow(uow, resources).quotas.admit_message("org_x", Person(agent_id, person, 3, 5))
        except EndUserRateLimited:
            return False
    return True


@pytest.mark.parametrize("store", ["postgres", "redis"])
async def test_one_persons_limit_holds_across_an_api_process_and_a_worker(
    store: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis = request.getfixturevalue("redis_for_processes").url if store == "redis" else None
    settings = make_settings(database_url, tmp_path, redis_url=SecretStr(redis) if redis else None)
    # Each "process" on its own pool, its resources built as `hutch serve` and `hutch worker` build them.
    api_database = Database(database_url, pool_size=2, max_overflow=0)
    worker_database = Database(database_url, pool_size=2, max_overflow=0)
    api_limiter = build_rate_limiter(settings, api_database.engine)
    api = build_worker_resources(settings, api_database, Metrics(), rate_limiter=api_limiter)
    worker = build_worker_resources(settings, worker_database, Metrics())
    try:
        kind = RedisRateLimiter if store == "redis" else PostgresRateLimiter
        assert isinstance(api.rate_limiter, kind) and isinstance(worker.rate_limiter, kind)
        agent_id, person = new_id("ag"), "telegram:4242"
        await asyncio.sleep(wait_for_a_fresh_minute(5))  # both count on real time: within one minute
        # The widget's API call, then Telegram's turns in the worker: one minute's 3, counted together.
        assert [await _admitted(api, agent_id, person) for _ in range(2)] == [True, True]
        assert await _admitted(worker, agent_id, person)
        assert not await _admitted(worker, agent_id, person)
        assert not await _admitted(api, agent_id, person)
        assert await _admitted(worker, agent_id, "telegram:77")  # someone else goes on
    finally:
        for resources, database in ((api, api_database), (worker, worker_database)):
            await resources.close()
            await database.dispose()
