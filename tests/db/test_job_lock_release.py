"""A job waiting for a chat's lock is announced to the workers when the job holding it ends, as a new job
is; otherwise the person's next message would wait for the workers' next poll (seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import procrastinate
import psycopg
import pytest
from procrastinate.psycopg_connector import PsycopgConnector

from hutch.db.urls import libpq_conninfo
from hutch.worker import run_announced_worker
from tests.conftest import PostgresServer

CHANNEL = "procrastinate_any_queue_v1"


@pytest.fixture
def jobs_db(postgres: PostgresServer, migrated_template: str) -> Iterator[str]:
    url = postgres.create_database(template=migrated_template)
    yield libpq_conninfo(url)
    postgres.drop_database(url)


def insert(conn: psycopg.Connection, lock: str | None, status: str, queue: str = "turns") -> int:
    row = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status) "
        "VALUES (%s, 'channels.telegram_update', %s, '{}', %s) RETURNING id",
        (queue, lock, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def heard(listener: psycopg.Connection) -> list[dict[str, object]]:
    return [json.loads(n.payload) for n in listener.notifies(timeout=0.5, stop_after=10)]


@pytest.mark.parametrize("ending", ["succeeded", "failed", "todo", "deleted"])
def test_the_oldest_job_waiting_on_a_lock_is_announced_when_the_running_one_ends(
    jobs_db: str, ending: str
) -> None:
    with (
        psycopg.connect(jobs_db, autocommit=True) as conn,
        psycopg.connect(jobs_db, autocommit=True) as listener,
    ):
        running = insert(conn, "telegram:chn_1:42", "doing")
        waiting = insert(conn, "telegram:chn_1:42", "todo")
        insert(conn, "telegram:chn_1:42", "todo")  # younger: its turn comes after
        listener.execute(f"LISTEN {CHANNEL}")
        if ending == "deleted":
            conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (running,))
        else:
            conn.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", (ending, running))

        assert heard(listener) == [{"type": "job_inserted", "job_id": waiting}]


def test_nothing_is_announced_without_a_waiting_job_or_a_lock(jobs_db: str) -> None:
    with (
        psycopg.connect(jobs_db, autocommit=True) as conn,
        psycopg.connect(jobs_db, autocommit=True) as listener,
    ):
        alone = insert(conn, "telegram:chn_1:7", "doing")
        unlocked = insert(conn, None, "doing")
        insert(conn, None, "todo")
        other_chat = insert(conn, "telegram:chn_1:8", "todo")
        listener.execute(f"LISTEN {CHANNEL}")
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id IN (%s, %s)", (alone, unlocked)
        )
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (other_chat,))

        assert heard(listener) == []


async def test_a_job_announced_while_the_worker_fetches_runs_without_waiting_for_the_poll(
    jobs_db: str,
) -> None:
    # The chat's running turn ends while the worker is fetching with a snapshot from just before: that
    # fetch finds nothing, and the announcement heard meanwhile must still be acted on (the poll is 60 s).
    app = procrastinate.App(connector=PsycopgConnector(conninfo=jobs_db))
    ran = asyncio.Event()

    @app.task(name="tests.next_turn", queue="turns")
    async def next_turn() -> None:
        ran.set()

    async with app.open_async():
        with psycopg.connect(jobs_db, autocommit=True) as conn:
            running = insert(conn, "telegram:chn_1:42", "doing")
            fetch = app.job_manager.fetch_job
            armed = False

            async def fetch_as_the_lock_comes_free(queues: Any, worker_id: int) -> Any:
                nonlocal armed
                found = await fetch(queues=queues, worker_id=worker_id)
                if armed:  # the running turn ends now, after this fetch's snapshot
                    armed = False
                    assert found is None
                    conn.execute(
                        "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (running,)
                    )
                    await asyncio.sleep(0.3)  # its announcement arrives while this fetch is still "running"
                return found

            app.job_manager.fetch_job = fetch_as_the_lock_comes_free  # type: ignore[method-assign]
            worker = asyncio.create_task(
                run_announced_worker(
                    app, queues=["turns"], install_signal_handlers=False, fetch_job_polling_interval=60
                )
            )
            try:
                await listening(conn)  # announcements are heard from here on
                armed = True
                await next_turn.configure(lock="telegram:chn_1:42").defer_async()  # announced: one fetch
                await asyncio.wait_for(ran.wait(), timeout=5)
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker


async def listening(conn: psycopg.Connection) -> None:
    """Once the worker's listener has asked to hear of new jobs."""
    for _ in range(100):
        heard = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        ).fetchone()
        if heard and heard[0]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never listened for new jobs")


def test_a_job_deferred_as_the_running_one_ends_waits_its_turn_and_is_announced(jobs_db: str) -> None:
    # The running job's end holds the chat's turn until it commits: a job inserted meanwhile waits for it
    # (and is fetchable once inserted); one inserted first makes the end wait, and the end announces it.
    with (
        psycopg.connect(jobs_db) as ending,
        psycopg.connect(jobs_db, autocommit=True) as conn,
        psycopg.connect(jobs_db, autocommit=True) as listener,
    ):
        running = insert(conn, "telegram:chn_1:42", "doing")
        listener.execute(f"LISTEN {CHANNEL}")
        ending.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (running,))
        inserted: list[int] = []
        inserting = threading.Thread(
            target=lambda: inserted.append(insert_alone(jobs_db, "telegram:chn_1:42"))
        )
        inserting.start()
        inserting.join(timeout=0.5)
        assert inserting.is_alive() and inserted == []  # waiting for the end to commit
        ending.commit()
        inserting.join(timeout=5)
        assert inserted  # and then in, with the running job visibly ended: its own announcement fetches it

        second = insert(conn, "telegram:chn_1:43", "doing")
        waiting_tx = psycopg.connect(jobs_db)
        try:
            waiting = insert(waiting_tx, "telegram:chn_1:43", "todo")  # not committed yet
            ended = threading.Thread(target=end_alone, args=(jobs_db, second))
            ended.start()
            ended.join(timeout=0.5)
            assert ended.is_alive()  # the end waits for the insert's commit...
            heard(listener)
            waiting_tx.commit()
            ended.join(timeout=5)
        finally:
            waiting_tx.close()
        assert {"type": "job_inserted", "job_id": waiting} in heard(listener)  # ...and announces it


def end_alone(jobs_db: str, job_id: int) -> None:
    with psycopg.connect(jobs_db, autocommit=True) as conn:
        conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job_id,))


def insert_alone(jobs_db: str, lock: str) -> int:
    with psycopg.connect(jobs_db, autocommit=True) as conn:
        return insert(conn, lock, "todo")
