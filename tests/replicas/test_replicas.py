"""Two API processes and two workers behind haproxy, on one PostgreSQL, and one of each killed mid-traffic.

The deployment of docs/deployment.md, "Several API processes and workers", in miniature: haproxy (Debian's,
started here with a generated configuration) balances `hutch serve --no-worker` processes and takes one out of
rotation when `/readyz` stops answering; `hutch worker` processes share the job queue. Under Telegram updates,
signed Stripe events and API chat traffic, `kill -9` ends one API process and one worker. Telegram and Stripe
send again whatever did not get a 200, as they do; chat clients see their error. Afterwards:

- every Telegram update has exactly one reply (or, when a worker died in the instant between marking a reply
  as sending and sending it, a recorded reason why it was not sent again: never twice, never silently);
- every Stripe event is applied once: one purchase entry per payment in the ledger, and the balance a
  customer sees is the sum of what they paid, however often each event arrived and wherever it landed;
- a key's rate limit and an org's monthly quota, hit at once through both API processes, admit exactly the
  limit, and still hold on the survivor after the kill;
- every chat completion answered 200 is stored, and no job is left behind in the queue.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from hutch.channels.inbound import NOT_SENT_AGAIN
from hutch.db.urls import libpq_conninfo
from tests.clock import wait_for_a_fresh_minute
from tests.conftest import TEST_PLANS, TEST_SECRET_KEY, PostgresServer
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.server import free_port, wait_until
from tests.fakes.stripe_signing import new_webhook_secret, sign_event
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers
from tests.log_scan import scan

pytestmark = pytest.mark.slow

HAPROXY = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
TOKEN = "626262626:AAE_replicas_token_for_the_replica_bot"
UPDATES = 48  # Telegram updates, from CHATS people
CHATS = 8
KILL_AFTER = 16  # updates accepted before one API process and one worker are killed
PAYMENTS = 10  # Stripe payments, each announced by two events, each event sent twice
RATE_LIMIT = 10  # per minute, on one key
MONTHLY_QUOTA = 5  # messages a month on the "monthly5" plan of tests/billing/plans.toml
CREDITS_PACK = 1000  # cents credited by the "credits-10" package
FIRST_PURCHASE_BONUS = 1000  # [billing] of tests/billing/plans.toml
MODEL_SECONDS = 0.6  # how long each model answer takes
STALLED_AFTER = 3.0  # seconds without a heartbeat before a worker's jobs are taken over


@dataclass
class Replicas:
    base: str  # haproxy's address: everything goes through it
    database_url: str
    env: dict[str, str]
    home: Path
    apis: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> None:
        log = self.home / f"worker-{len(self.workers) + 1}.log"
        with log.open("w") as out:
            self.workers.append(
                subprocess.Popen(
                    [*HUTCH, "worker", "--concurrency", "2"],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(libpq_conninfo(self.database_url)) as conn:
            return conn.execute(sql, params).fetchall()


HUTCH = [sys.executable, "-m", "hutch.cli"]

HAPROXY_CONFIG = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # A slow check is a busy process, not a dead one (a dead one refuses the connection at once).
    timeout check 5s
    # A connection refused (a dead process not yet out of rotation) is tried again on the other server. A
    # request already sent is not: a POST may have been acted on, and its sender decides what to do.
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend hutch
    bind 127.0.0.1:{port}
    option forwardfor
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1
    http-response set-header X-Hutch-Replica %s
{servers}
"""


@contextmanager
def replicas(
    postgres: PostgresServer, template: str, home: Path, telegram: FakeTelegramServer, llm: FakeLLMServer
) -> Iterator[Replicas]:
    assert HAPROXY is not None
    url = postgres.create_database(prefix="hutch_replicas", template=template)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(home / "data"),
        HUTCH_HOST="127.0.0.1",
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_PLANS_FILE=str(TEST_PLANS),
        HUTCH_EMBEDDING_PROVIDER="none",
        HUTCH_PUBLIC_URL="https://hutch.example",
        HUTCH_TELEGRAM_API_BASE=telegram.base_url,
        HUTCH_STRIPE_WEBHOOK_SECRET=new_webhook_secret(),
        HUTCH_OPENAI_API_KEY="sk-test-platform-key",
        HUTCH_OPENAI_BASE_URL=llm.api_base,
        HUTCH_PROVIDER_URLS_ALLOW_PRIVATE="true",
        HUTCH_LLM_MAX_RETRIES="0",
        HUTCH_WORKER_STALLED_TIMEOUT=str(STALLED_AFTER),
        HUTCH_WORKER_HEARTBEAT_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",  # the logs tell which jobs a worker is running
    )
    running = Replicas("", url, env, home)
    ports = {name: free_port() for name in ("api1", "api2")}
    proxy_port = free_port()
    config = home / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(
            port=proxy_port,
            servers="\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in ports.items()),
        )
    )
    with ExitStack() as stack:
        for name, port in ports.items():
            out = stack.enter_context((home / f"{name}.log").open("w"))
            running.apis[name] = subprocess.Popen(
                [*HUTCH, "serve", "--no-worker", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proxy_log = stack.enter_context((home / "haproxy.log").open("w"))
        proxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], stdout=proxy_log, stderr=subprocess.STDOUT
        )
        running.start_worker()
        running.start_worker()
        running.base = f"http://127.0.0.1:{proxy_port}"
        try:
            for name, port in ports.items():
                wait_until(partial(_ready, running, name, port), timeout=180, interval=0.2)
            yield running
        finally:
            for process in [*running.apis.values(), *running.workers, proxy]:
                process.terminate()
            for process in [*running.apis.values(), *running.workers, proxy]:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            postgres.drop_database(url)
            for log in sorted(home.glob("*.log")):
                scan(f"{log.name} of the replica test", log.read_text())


def _ready(running: Replicas, name: str, port: int) -> bool:
    process = running.apis[name]
    if process.poll() is not None:
        raise AssertionError(f"{name} exited: {(running.home / f'{name}.log').read_text()[-3000:]}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Tenant:
    org_id: str
    headers: dict[str, str]
    agent: str  # slug


def sign_up(client: httpx.Client, email: str) -> Tenant:
    signup = client.post("/api/v1/auth/signup", json={"email": email, "password": "replica-pw-1"})
    assert signup.status_code == 201, signup.text
    headers = {"Authorization": f"Bearer {signup.json()['access_token']}"}
    agent = client.post(
        "/api/v1/agents", json={"name": "Replica", "model": "openai/gpt-4o-mini"}, headers=headers
    )
    assert agent.status_code == 201, agent.text
    return Tenant(str(signup.json()["org"]["id"]), headers, str(agent.json()["slug"]))


def chat_key(client: httpx.Client, tenant: Tenant, **limits: int) -> dict[str, str]:
    created = client.post(
        "/api/v1/api-keys", json={"label": "replicas", "scopes": ["chat"], **limits}, headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


def chat(
    client: httpx.Client, key: dict[str, str], model: str, text: str, user: str | None = None
) -> httpx.Response | None:
    """One chat completion (kept in a conversation with ``user``); None when the connection failed (its API
    process died under it)."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    try:
        return client.post("/v1/chat/completions", json={**body, "user": user} if user else body, headers=key)
    except httpx.HTTPError:
        return None


def payment_events(org_id: str) -> list[dict[str, object]]:
    """Each payment announced twice, as Stripe does for Checkout in payment mode; each event sent twice."""
    events: list[dict[str, object]] = []
    for n in range(PAYMENTS):
        intent = f"pi_replicas_{n:04d}"
        metadata = {"org_id": org_id, "package_id": "credits-10"}
        events.append(_event(f"evt_pi_{n}", "payment_intent.succeeded", {
            "id": intent, "object": "payment_intent", "amount_received": CREDITS_PACK, "metadata": metadata,
        }))  # fmt: skip
        events.append(_event(f"evt_cs_{n}", "checkout.session.completed", {
            "id": f"cs_replicas_{n:04d}", "object": "checkout.session", "mode": "payment",
            "payment_status": "paid", "payment_intent": intent, "amount_total": CREDITS_PACK,
            "client_reference_id": org_id, "metadata": metadata,
        }))  # fmt: skip
    copies = events * 2
    random.Random(30).shuffle(copies)
    return copies


def _event(event_id: str, kind: str, obj: dict[str, object]) -> dict[str, object]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def send_until_accepted(client: httpx.Client, path: str, content: bytes, headers: dict[str, str]) -> str:
    """Post as Telegram and Stripe do: again, after a pause, until the answer is a 200. The replica that
    accepted it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = client.post(path, content=content, headers=headers)
            if answer.status_code == 200:
                return str(answer.headers.get("X-Hutch-Replica", ""))
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{path} refused for 30 s"
        time.sleep(0.2)


def burst(base: str, key: dict[str, str], model: str, count: int) -> list[tuple[int, str]]:
    """``count`` chat completions at once: each answer's status and the replica that gave it."""

    def one(n: int) -> tuple[int, str]:
        with httpx.Client(base_url=base, timeout=30) as client:
            answer = chat(client, key, model, f"burst {n}")
        assert answer is not None, "no API process was killed yet"
        return answer.status_code, answer.headers.get("X-Hutch-Replica", "")

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_two_api_processes_and_two_workers_survive_losing_one_of_each(
    postgres: PostgresServer,
    migrated_template: str,
    telegram_server: FakeTelegramServer,
    fake_llm_server: FakeLLMServer,
    tmp_path: Path,
) -> None:
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy); .ci/run installs it")
    telegram_server.reset()
    telegram_server.add_bot(TOKEN, "replica_bot")
    fake_llm_server.reset()
    # Every model call takes a moment, so a killed worker dies with turns in flight.
    fake_llm_server.script(*(ScriptedReply(delay=MODEL_SECONDS) for _ in range(400)))
    try:
        run_and_break_replicas(postgres, migrated_template, telegram_server, fake_llm_server, tmp_path)
    finally:  # the fakes are the whole run's: the next test finds them as it would without this one
        fake_llm_server.reset()
        telegram_server.reset()


def run_and_break_replicas(
    postgres: PostgresServer,
    migrated_template: str,
    telegram_server: FakeTelegramServer,
    fake_llm_server: FakeLLMServer,
    tmp_path: Path,
) -> None:
    with (
        replicas(postgres, migrated_template, tmp_path, telegram_server, fake_llm_server) as hutch,
        httpx.Client(base_url=hutch.base, timeout=30) as setup,
    ):
        owner = sign_up(setup, "owner@replicas.example")  # the first account: a platform admin
        channel = setup.post(
            f"/api/v1/agents/{_agent_id(setup, owner)}/channels/telegram",
            json={"bot_token": TOKEN},
            headers=owner.headers,
        )
        assert channel.status_code == 201, channel.text
        webhook = telegram_server.webhook(TOKEN)
        assert webhook is not None
        telegram_path = f"/webhooks/telegram/{channel.json()['id']}"
        steady, limited = chat_key(setup, owner), chat_key(setup, owner, rate_limit_per_minute=RATE_LIMIT)
        capped = sign_up(setup, "capped@replicas.example")
        moved = setup.put(
            f"/api/v1/admin/orgs/{capped.org_id}/plan", json={"plan": "monthly5"}, headers=owner.headers
        )
        assert moved.status_code == 200, moved.text
        capped_key = chat_key(setup, capped)

        halfway = threading.Event()
        accepted_by: Counter[str] = Counter()
        chats: list[tuple[str, int, str]] = []  # (question, status, answer) of the steady chat traffic
        stop_chatting = threading.Event()

        def telegram() -> None:
            with httpx.Client(base_url=hutch.base, timeout=30) as client:
                for n in range(UPDATES):
                    body = text_update(
                        f"update {n}", sender=Sender(id=6_100_000 + n % CHATS), update_id=300_000 + n
                    )
                    replica = send_until_accepted(
                        client,
                        telegram_path,
                        json.dumps(body).encode(),
                        {**webhook_headers(webhook.secret_token), "Content-Type": "application/json"},
                    )
                    accepted_by[replica] += 1
                    if n + 1 == KILL_AFTER:
                        halfway.set()
                    time.sleep(0.15)

        def stripe() -> None:
            secret = hutch.env["HUTCH_STRIPE_WEBHOOK_SECRET"]
            with httpx.Client(base_url=hutch.base, timeout=30) as client:
                for event in payment_events(owner.org_id):
                    signed = sign_event(event, secret)  # signed when sent: a resend is signed anew
                    send_until_accepted(client, "/webhooks/stripe", signed.body, signed.headers)
                    time.sleep(0.2)

        def chatting() -> None:
            with httpx.Client(base_url=hutch.base, timeout=30) as client:
                n = 0
                while not stop_chatting.is_set():
                    question = f"steady {n}"
                    answer = chat(client, steady, owner.agent, question, user="steady-caller")
                    if answer is None:
                        chats.append((question, 0, ""))
                    else:
                        content = (
                            answer.json()["choices"][0]["message"]["content"] if answer.is_success else ""
                        )
                        chats.append((question, answer.status_code, content))
                    n += 1
                    time.sleep(0.1)

        traffic = [threading.Thread(target=target, daemon=True) for target in (telegram, stripe, chatting)]
        for thread in traffic:
            thread.start()

        # Limits counted across both API processes, while the traffic runs: within one minute's window.
        time.sleep(wait_for_a_fresh_minute(5))  # a burst takes a second or two
        rate_window = time.time() // 60
        rated = burst(hutch.base, limited, owner.agent, RATE_LIMIT * 2 + 5)
        quota = burst(hutch.base, capped_key, capped.agent, MONTHLY_QUOTA * 2 + 2)
        assert {replica for _, replica in rated} == {"api1", "api2"}, rated  # both processes counted
        assert {replica for _, replica in quota} == {"api1", "api2"}, quota
        assert Counter(status for status, _ in rated) == {200: RATE_LIMIT, 429: RATE_LIMIT + 5}
        assert Counter(status for status, _ in quota) == {200: MONTHLY_QUOTA, 402: MONTHLY_QUOTA + 2}

        assert halfway.wait(60), "Telegram's updates were not accepted"
        # The worker is killed while a turn of its own waits on the model: typing shown, no answer sent yet.
        wait_until(lambda: bool(turns_in_flight(hutch.home / "worker-1.log")), timeout=20, interval=0.05)
        hutch.apis["api1"].kill()  # SIGKILL: no goodbye, requests in flight cut off
        hutch.workers[0].kill()
        killed_at = time.monotonic()
        hutch.apis["api1"].wait(10)
        hutch.workers[0].wait(10)
        cut_off = turns_in_flight(hutch.home / "worker-1.log")
        # The dead worker's jobs are taken over once its heartbeat is stale: by its replacement when it
        # starts (systemd restarts it: deploy/hutch-worker@.service), or by the survivor within a minute.
        time.sleep(max(0.0, STALLED_AFTER + 0.5 - (time.monotonic() - killed_at)))
        hutch.start_worker()

        for thread in traffic[:2]:
            thread.join(60)
            assert not thread.is_alive(), "Telegram or Stripe could not deliver everything"
        stop_chatting.set()
        traffic[2].join(30)
        # The survivor still counts from where both left off: the limits live in PostgreSQL.
        with httpx.Client(base_url=hutch.base, timeout=30) as client:
            after_rate = chat(client, limited, owner.agent, "after the kill")
            after_quota = chat(client, capped_key, capped.agent, "after the kill")
        assert after_quota is not None and after_quota.status_code == 402
        assert after_quota.headers["X-Hutch-Replica"] == "api2"
        assert after_rate is not None
        if time.time() // 60 == rate_window:  # (a new minute opens a new window)
            assert after_rate.status_code == 429
        assert accepted_by["api1"] > 0 and accepted_by["api2"] > 0 and sum(accepted_by.values()) == UPDATES

        # Telegram: every update answered exactly once, or visibly not sent again.
        def replies() -> Counter[str]:
            return Counter(t for t in telegram_server.sent_texts(token=TOKEN) if t.startswith("Echo: update"))

        def given_up() -> set[int]:
            rows = hutch.query("SELECT external_id FROM external_events WHERE outcome = %s", NOT_SENT_AGAIN)
            return {int(str(row[0])) - 300_000 for row in rows}

        wait_until(lambda: len(replies()) + len(given_up()) >= UPDATES, timeout=60, interval=0.3)
        time.sleep(1)  # an answer sent twice would show up now
        answered = replies()
        assert [text for text, count in answered.items() if count > 1] == []
        answered_ids = {int(text.rsplit(" ", 1)[1]) for text in answered}
        assert answered_ids | given_up() == set(range(UPDATES))
        assert len(given_up()) <= 1, given_up()

        # Stripe: each payment credited once, whichever events and copies arrived where.
        wait_until(
            lambda: hutch.query("SELECT count(*) FROM stripe_events WHERE handled")[0][0] == PAYMENTS * 2,
            timeout=30,
            interval=0.3,
        )
        purchases = hutch.query(
            "SELECT reference, amount FROM ledger_entries WHERE org_id = %s AND kind = 'purchase'",
            owner.org_id,
        )
        assert sorted(purchases) == sorted(
            (f"purchase:pi_replicas_{n:04d}:credits", CREDITS_PACK) for n in range(PAYMENTS)
        )
        with httpx.Client(base_url=hutch.base, timeout=30) as client:
            balance = client.get("/api/v1/billing/balance", headers=owner.headers).json()
        assert balance["credits_cents"] == PAYMENTS * CREDITS_PACK + FIRST_PURCHASE_BONUS

        # Chat: every completion answered is stored with its answer; those cut off were told so.
        answered_chats = {question: content for question, status, content in chats if status == 200}
        assert len(answered_chats) >= 10 and all(
            content == f"Echo: {question}" for question, content in answered_chats.items()
        )
        assert {status for _, status, _ in chats} <= {200, 0, 502, 503}
        stored = {
            str(row[0])
            for row in hutch.query(
                "SELECT content FROM messages WHERE role = 'assistant' AND content LIKE 'Echo: steady %%'"
            )
        }
        assert {f"Echo: {question}" for question in answered_chats} <= stored

        def unfinished() -> list[tuple[object, ...]]:
            return hutch.query(
                "SELECT task_name, status FROM procrastinate_jobs"
                " WHERE status IN ('todo', 'doing', 'failed') AND queue_name <> 'housekeeping'"
            )

        wait_until(lambda: unfinished() == [], timeout=30, interval=0.3)
        # The turns the killed worker was in the middle of were run again by another, and answered once.
        logs = "".join(log.read_text() for log in tmp_path.glob("worker-*.log"))
        retried = {int(n) for n in re.findall(r"retrying a job whose worker died.*?job_id=(\d+)", logs)}
        assert cut_off and cut_off <= retried, (cut_off, retried)


def turns_in_flight(worker_log: Path) -> set[int]:
    """Telegram turns a worker has begun (typing shown) and not answered, from its log."""
    requests = [line for line in worker_log.read_text().splitlines() if "telegram request" in line]

    def jobs(api_method: str) -> set[int]:
        return {
            int(found[1])
            for line in requests
            if re.search(rf"api_method={api_method}\b", line) and (found := re.search(r"job_id=(\d+)", line))
        }

    return jobs("sendChatAction") - jobs("sendMessage")


def _agent_id(client: httpx.Client, tenant: Tenant) -> str:
    agents = client.get("/api/v1/agents", headers=tenant.headers).json()["items"]
    return str(next(a["id"] for a in agents if a["slug"] == tenant.agent))
