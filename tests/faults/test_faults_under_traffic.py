"""Faults under Telegram traffic: PostgreSQL restarted, a worker killed mid-turn, the job queue flooded. No
update is answered twice or lost silently.

Hutch (`hutch serve` and `hutch worker`, each its own process) runs on a PostgreSQL of its own. In the first
test the database is stopped and started again in the middle of the traffic; updates Telegram could not
deliver meanwhile are sent again, as Telegram does with any answer but 200. Afterwards every update has
exactly one reply, or (when the database went away just as its answer was being sent) a recorded reason why
it was not sent again. In the second, thousands of jobs wait ahead of the replies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from hutch.channels.inbound import NOT_SENT_AGAIN
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import libpq_conninfo
from tests.conftest import TEST_PLANS, TEST_SECRET_KEY
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.server import free_port, wait_until
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers
from tests.log_scan import scan

TOKEN = "515151515:AAE_restart_token_for_the_restart_bot"
UPDATES = 60
RESTART_AFTER = 20
FLOOD = 3000
FLOOD_UPDATES = 20
KILLED_CHATS = 5


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    os.chmod(tmp_path, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
    postgres = EmbeddedPostgres(tmp_path / "pg")
    url = postgres.start()
    try:
        yield postgres, url
    finally:
        postgres.stop()


@dataclass
class Running:
    base: str
    url: str
    channel_id: str
    secret: str
    api: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    command: list[str]
    env: dict[str, str]
    worker_log: Path

    def start_worker(self) -> None:
        with self.worker_log.open("a") as out:
            self.worker = subprocess.Popen(
                [*self.command, "worker", "--concurrency", "2"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def post(self, client: httpx.Client, body: dict[str, object]) -> int:
        try:
            return client.post(
                f"{self.base}/webhooks/telegram/{self.channel_id}",
                json=body,
                headers=webhook_headers(self.secret),
            ).status_code
        except httpx.HTTPError:
            return 0


@contextmanager
def running_hutch(
    url: str,
    telegram: FakeTelegramServer,
    home: Path,
    *,
    model: str = "demo/echo",
    llm: FakeLLMServer | None = None,
) -> Iterator[Running]:
    """`hutch serve` and `hutch worker` on ``url``, with an agent on a Telegram bot of the fake server (and
    its model on the fake OpenAI server, with ``llm``)."""
    telegram.reset()
    telegram.add_bot(TOKEN, "restart_bot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(home / "data"),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_PLANS_FILE=str(TEST_PLANS),
        HUTCH_EMBEDDING_PROVIDER="none",
        HUTCH_TELEGRAM_API_BASE=telegram.base_url,
        HUTCH_PUBLIC_URL="https://hutch.example",
        HUTCH_WORKER_STALLED_TIMEOUT="5",
    )
    if llm is not None:
        env.update(
            HUTCH_OPENAI_API_KEY="sk-test-platform-key",
            HUTCH_OPENAI_BASE_URL=llm.api_base,
            HUTCH_PROVIDER_URLS_ALLOW_PRIVATE="true",
            HUTCH_LLM_MAX_RETRIES="0",
        )
    hutch = [sys.executable, "-m", "hutch.cli"]
    subprocess.run([*hutch, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = home / "api.log", home / "worker.log"
    with logs[0].open("w") as api_out, logs[1].open("w") as worker_out:
        api = subprocess.Popen(
            [*hutch, "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=api_out,
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [*hutch, "worker", "--concurrency", "2"], env=env, stdout=worker_out, stderr=subprocess.STDOUT
        )
    running = Running(base, url, "", "", api, worker, hutch, env, logs[1])
    try:
        wait_until(lambda: _ready(base), timeout=60)
        running.channel_id = _connect_bot(base, model)
        webhook = telegram.webhook(TOKEN)
        assert webhook is not None
        running.secret = webhook.secret_token or ""
        yield running
    finally:
        for process in (api, running.worker):  # the worker may have been replaced
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            scan(f"{log.name} of a fault test", log.read_text())


def update(n: int) -> dict[str, object]:
    return text_update(f"question {n}", sender=Sender(id=8_880_000 + n % 5), update_id=70_000 + n)


def test_updates_during_a_database_restart_are_answered_once_or_visibly_not(
    own_postgres: tuple[EmbeddedPostgres, str], telegram_server: FakeTelegramServer, tmp_path: Path
) -> None:
    postgres, url = own_postgres
    with running_hutch(url, telegram_server, tmp_path) as hutch:
        sent = threading.Event()
        halfway = threading.Event()

        def telegram() -> None:
            with httpx.Client(timeout=10) as client:
                for n in range(UPDATES):
                    deadline = time.monotonic() + 90
                    while hutch.post(client, update(n)) != 200:  # Telegram resends until it gets a 200
                        assert time.monotonic() < deadline, "an update was refused for 90 s"
                        time.sleep(0.3)
                    if n == RESTART_AFTER:
                        halfway.set()
                    time.sleep(0.05)
            sent.set()

        sender = threading.Thread(target=telegram, daemon=True)
        sender.start()
        assert halfway.wait(60)
        postgres.stop()  # the database goes away mid-traffic...
        time.sleep(2)
        postgres.start()  # ...and comes back at the same address
        sender.join(150)
        assert sent.is_set(), "the updates were not all accepted"

        def settled() -> bool:
            return len(_replies(telegram_server)) + len(_given_up(url)) >= UPDATES

        wait_until(settled, timeout=120, interval=0.5)
        time.sleep(3)  # anything sent twice would show up now
        replies = Counter(_replies(telegram_server))
        assert set(replies.values()) <= {1}, [text for text, count in replies.items() if count > 1]
        # Each update answered once, or -- when the worker lost the database in the middle of sending it --
        # recorded as not sent again, with the reason: never twice, never silently.
        given_up = _given_up(url)
        answered_ids = {int(text.rsplit(" ", 1)[1]) for text in replies}
        assert answered_ids | {n - 70_000 for n in given_up} == set(range(UPDATES))
        assert len(given_up) <= 3, given_up
        assert hutch.api.poll() is None and hutch.worker.poll() is None, "a process died with the database"


def test_a_flooded_queue_delays_answers_but_loses_none(
    own_postgres: tuple[EmbeddedPostgres, str], telegram_server: FakeTelegramServer, tmp_path: Path
) -> None:
    _, url = own_postgres
    with running_hutch(url, telegram_server, tmp_path) as hutch:
        # Thousands of jobs ahead of the replies (alerts to deliver that no longer exist: each a no-op).
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
            conn.execute(
                "SELECT procrastinate_defer_jobs_v1(array_agg(ROW('notifications', 'admin.deliver_alert', 0,"
                " NULL, NULL, jsonb_build_object('alert_id', 'alr_gone_' || n), NULL)"
                "::procrastinate_job_to_defer_v1)) FROM generate_series(1, %s) n",
                (FLOOD,),
            )
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            acknowledged = [hutch.post(client, update(n)) for n in range(FLOOD_UPDATES)]
        assert acknowledged == [200] * FLOOD_UPDATES  # a full queue does not slow the webhook down to failure
        assert time.monotonic() - started < 20
        wait_until(lambda: len(_replies(telegram_server)) >= FLOOD_UPDATES, timeout=180, interval=0.5)
        replies = Counter(_replies(telegram_server))
        assert sorted(replies) == sorted(
            f"[Demo — no AI] You said: question {n}" for n in range(FLOOD_UPDATES)
        )
        assert set(replies.values()) == {1}

        def unfinished() -> int:
            with psycopg.connect(libpq_conninfo(url)) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing', 'failed')"
                    " AND task_name = 'channels.telegram_update'"
                ).fetchone()
            return row[0] if row else -1

        # A job's reply reaches Telegram a moment before the job is marked done; a lost one never is.
        wait_until(lambda: unfinished() == 0, timeout=30, interval=0.2)


def test_a_worker_killed_mid_turn_is_replaced_and_every_chat_answered_once(
    own_postgres: tuple[EmbeddedPostgres, str],
    telegram_server: FakeTelegramServer,
    fake_llm_server: FakeLLMServer,
    tmp_path: Path,
) -> None:
    """kill -9 of the worker while every chat's turn waits on the model: the next worker resumes each turn
    from its stored message (phase 1 committed), and each chat gets one answer; no message stored twice."""
    _, url = own_postgres
    fake_llm_server.reset()
    fake_llm_server.script(*(ScriptedReply(content="never arrives", delay=60) for _ in range(KILLED_CHATS)))
    with running_hutch(
        url, telegram_server, tmp_path, model="openai/gpt-4o-mini", llm=fake_llm_server
    ) as hutch:
        with httpx.Client(timeout=10) as client:
            for n in range(KILLED_CHATS):  # different chats: their turns run at once
                body = text_update(f"question {n}", sender=Sender(id=9_990_000 + n), update_id=90_000 + n)
                assert hutch.post(client, body) == 200
        wait_until(lambda: len(fake_llm_server.requests) >= KILLED_CHATS, timeout=30, interval=0.1)
        hutch.worker.kill()  # SIGKILL: no rollback, no goodbye
        hutch.worker.wait(10)
        fake_llm_server.reset()  # the model answers at once from now on (it echoes the question)
        time.sleep(6)  # the dead worker's heartbeat goes stale (HUTCH_WORKER_STALLED_TIMEOUT=5)
        hutch.start_worker()

        def answered() -> bool:
            return all(telegram_server.sent_texts(9_990_000 + n) for n in range(KILLED_CHATS))

        wait_until(answered, timeout=90, interval=0.3)
        time.sleep(2)  # anything sent twice would show up now
        for n in range(KILLED_CHATS):
            assert len(telegram_server.sent_texts(9_990_000 + n)) == 1, telegram_server.sent_texts(
                9_990_000 + n
            )
        with psycopg.connect(libpq_conninfo(url)) as conn:
            stored = conn.execute(
                "SELECT content FROM messages WHERE role = 'user' ORDER BY content"
            ).fetchall()
            answers = conn.execute("SELECT count(*) FROM messages WHERE role = 'assistant'").fetchone()
        assert [row[0] for row in stored] == [f"question {n}" for n in range(KILLED_CHATS)]
        assert answers is not None and answers[0] == KILLED_CHATS


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _connect_bot(base: str, model: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "pg@example.com", "password": "restart-pw-1"}
        )
        auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        agent = client.post("/api/v1/agents", json={"name": "Steady", "model": model}, headers=auth).json()
        channel = client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": TOKEN}, headers=auth
        )
        assert channel.status_code == 201, channel.text
        return str(channel.json()["id"])


def _given_up(url: str) -> set[int]:
    """Update ids whose answer was not sent again after an interruption mid-send."""
    with psycopg.connect(libpq_conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT external_id FROM external_events WHERE outcome = %s", (NOT_SENT_AGAIN,)
        ).fetchall()
    return {int(row[0]) for row in rows}


def _replies(telegram: FakeTelegramServer) -> list[str]:
    return [text for text in telegram.sent_texts(token=TOKEN) if text.startswith("[Demo")]
