"""Jobs: one transaction each, retries, and surviving a worker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.repository import STORE_EVENT, event_row
from hutch.db import migrations
from hutch.db.jobs import DEFAULT_RETRY, JobContext, job, registry
from hutch.db.urls import libpq_conninfo
from hutch.settings import Settings
from hutch.worker import JobQueue
from tests import worker_harness
from tests.conftest import PostgresServer, RecordingJobQueue, make_settings

# --- the job wrapper, inside the test's transaction -----------------------------------------------


@job("tests.write_then_maybe_fail", retry=False)
async def write_then_maybe_fail(ctx: JobContext, name: str, fail: bool) -> str:
    await ctx.uow.session.execute(text("INSERT INTO wrapper_probe (name) VALUES (:n)"), {"n": name})
    ctx.uow.defer("tests.follow_up", name=name)
    if fail:
        raise RuntimeError("the job failed after writing")
    return name


@job("tests.follow_up", retry=False)
async def follow_up(ctx: JobContext, name: str) -> None:
    await ctx.uow.session.execute(text("INSERT INTO wrapper_probe (name) VALUES (:n)"), {"n": name + "+1"})


async def _probe_names(session: AsyncSession) -> list[str]:
    return list((await session.scalars(text("SELECT name FROM wrapper_probe ORDER BY name"))).all())


async def test_job_commits_its_writes_and_defers_follow_ups_after_commit(
    resources: Any, session: AsyncSession
) -> None:
    await session.execute(text("CREATE TABLE wrapper_probe (name text)"))
    await session.commit()
    jobs: RecordingJobQueue = resources.jobs
    assert (
        await jobs.execute(
            "tests.write_then_maybe_fail",
            {"name": "ok", "fail": False},
            job_id=1,
            attempt=0,
            resources=jobs.worker_resources,  # type: ignore[arg-type]
        )
        == "ok"
    )
    assert jobs.deferred == [("tests.follow_up", {"name": "ok"})]
    await jobs.run_pending()
    assert await _probe_names(session) == ["ok", "ok+1"]


async def test_failed_job_rolls_back_and_defers_nothing(resources: Any, session: AsyncSession) -> None:
    await session.execute(text("CREATE TABLE wrapper_probe (name text)"))
    await session.commit()
    jobs: RecordingJobQueue = resources.jobs
    with pytest.raises(RuntimeError, match="failed after writing"):
        await jobs.execute(
            "tests.write_then_maybe_fail",
            {"name": "bad", "fail": True},
            job_id=2,
            attempt=0,
            resources=jobs.worker_resources,  # type: ignore[arg-type]
        )
    assert jobs.deferred == []
    assert await _probe_names(session) == []
    metrics = resources.metrics.render().decode()
    assert 'hutch_job_runs_total{outcome="failed",task="tests.write_then_maybe_fail"} 1.0' in metrics


async def test_a_job_queued_within_a_transaction_exists_only_if_it_commits(
    settings: Settings, database_url: str, session: AsyncSession
) -> None:
    queue = JobQueue(settings, database_url)  # the real one: it writes procrastinate's table itself
    count = text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'tests.follow_up'")
    await queue.defer_within(session, "tests.follow_up", name="kept")
    row = (
        await session.execute(
            text(
                "SELECT queue_name, args, status FROM procrastinate_jobs WHERE task_name = 'tests.follow_up'"
            )
        )
    ).one()
    assert (row.queue_name, row.args, row.status) == ("default", {"name": "kept"}, "todo")
    await session.rollback()
    assert await session.scalar(count) == 0
    with pytest.raises(KeyError, match="unknown job"):
        await queue.defer_within(session, "tests.no_such_job")


async def test_an_event_and_its_job_are_one_statement_and_a_replay_queues_nothing(
    settings: Settings, database_url: str, session: AsyncSession
) -> None:
    """A webhook's event and the job answering it are stored by one statement (one round trip, atomic
    without a transaction around it); the same event again writes nothing and queues nothing."""
    queue = JobQueue(settings, database_url)
    jobs = text("SELECT args, lock FROM procrastinate_jobs WHERE task_name = 'tests.follow_up'")
    row = event_row("tests:webhook", "77", {"text": "hi"})
    for stored in (True, False):
        assert (
            await queue.defer_after(session, STORE_EVENT, row, "tests.follow_up", lock="chat:1", name="e")
            is stored
        )
    assert [tuple(job) for job in (await session.execute(jobs)).all()] == [({"name": "e"}, "chat:1")]
    payload = await session.scalar(text("SELECT payload FROM external_events WHERE external_id = '77'"))
    assert payload == {"text": "hi"}


def test_jobs_retry_with_exponential_backoff_then_give_up() -> None:
    assert registry.specs["tests.write_then_maybe_fail"].retry is False
    strategy = DEFAULT_RETRY
    waits = []
    for attempts in range(6):
        job_row = procrastinate.jobs.Job(
            id=1, queue="default", lock=None, queueing_lock=None, task_name="x", attempts=attempts
        )
        decision = strategy.get_retry_decision(exception=RuntimeError("provider down"), job=job_row)
        waits.append(None if decision is None else decision.retry_at)
    assert all(w is not None for w in waits[:5]) and waits[5] is None
    gaps = [(w - waits[0]).total_seconds() for w in waits[1:5] if w is not None and waits[0] is not None]
    assert [round(g) for g in gaps] == [2, 6, 14, 30]  # waits of 2, 4, 8, 16, 32 seconds


# --- real worker processes on a committed database ------------------------------------------------


@pytest.fixture
def committed_url(postgres: PostgresServer) -> str:
    url = postgres.create_database("hutch_jobs")
    migrations.upgrade(url)
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute(worker_harness.CREATE_EFFECTS_TABLE)
    return url


@pytest.fixture
def worker_settings(committed_url: str, tmp_path: Path) -> Settings:
    return make_settings(committed_url, tmp_path)


@pytest.fixture
async def queue(worker_settings: Settings, committed_url: str) -> AsyncIterator[JobQueue]:
    queue = JobQueue(worker_settings, committed_url)
    await queue.open()
    yield queue
    await queue.close()


class Workers:
    def __init__(self, settings: Settings, url: str) -> None:
        self.env = {
            **os.environ,
            "HUTCH_ENV": "test",
            "HUTCH_DATABASE_URL": url,
            "HUTCH_SECRET_KEY": settings.require_secret_key(),
            "HUTCH_ENCRYPTION_KEYS": settings.encryption_keys[0].get_secret_value(),
            "HUTCH_WORKER_STALLED_TIMEOUT": "2",
            "HUTCH_WORKER_HEARTBEAT_INTERVAL": "0.5",
            "HUTCH_DATA_DIR": str(settings.data_dir),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.worker_harness", "worker", "--concurrency", "2"],
            env=self.env,
            cwd=Path(__file__).parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(worker_settings: Settings, committed_url: str) -> Iterator[Workers]:
    pool = Workers(worker_settings, committed_url)
    yield pool
    pool.stop_all()


def _effects(url: str) -> list[tuple[str, int, int]]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return [
            tuple(row) for row in conn.execute("SELECT key, job_id, worker_pid FROM job_effects ORDER BY key")
        ]


def _job_status(url: str, job_id: int) -> str:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        row = conn.execute("SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        return str(row[0])


async def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_job_killed_mid_run_runs_again_after_restart_and_completes_once(
    queue: JobQueue, workers: Workers, committed_url: str, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    (markers / "block").touch()
    job_id = await queue.defer("tests.record_effect", key="only-once", marker_dir=str(markers))

    first = workers.start()
    await _wait_for(lambda: any(markers.glob("started-only-once-*")), 30, "the job to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert _effects(committed_url) == []  # the killed run never committed
    assert _job_status(committed_url, job_id) == "doing"

    (markers / "block").unlink()
    await asyncio.sleep(2.5)  # the dead worker's heartbeat goes stale
    second = workers.start()
    await _wait_for(lambda: _job_status(committed_url, job_id) == "succeeded", 30, "the retried job")
    effects = _effects(committed_url)
    assert [(key, jid) for key, jid, _ in effects] == [("only-once", job_id)]
    assert effects[0][2] == second.pid


async def test_several_workers_share_the_queue_and_run_each_job_once(
    queue: JobQueue, workers: Workers, committed_url: str, tmp_path: Path
) -> None:
    keys = [f"job-{n:02d}" for n in range(30)]
    for key in keys:
        await queue.defer("tests.record_effect", key=key, marker_dir=str(tmp_path))
    workers.start()
    workers.start()
    await _wait_for(lambda: len(_effects(committed_url)) == len(keys), 60, "all jobs")
    await asyncio.sleep(0.5)
    effects = _effects(committed_url)
    assert [key for key, _, _ in effects] == keys  # primary key: a second run would have failed loudly
    with psycopg.connect(libpq_conninfo(committed_url)) as conn:
        statuses = conn.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs"
            " WHERE task_name = 'tests.record_effect' GROUP BY 1"
        ).fetchall()
    assert statuses == [("succeeded", len(keys))]
