"""Telegram webhooks: acknowledgement throughput and latency of a real `hutch serve`, next to a bare FastAPI
handler doing one INSERT, and the end-to-end time from an update to the bot's reply.

Hutch checks the secret token, stores the update in its inbox (once per update id) and queues the reply
job; the reference stores the body with one INSERT. Both on the same embedded PostgreSQL, one process
each, measured in the same run: throughput over 16 connections, latency over 1, and latency at a steady
200 requests/s. Then, with a `hutch worker` running, updates are sent one at a time and timed until the
fake Telegram server receives `sendMessage` (the demo model answers, so this is Hutch's own time).
Targets: acknowledgement throughput at least 60% of the bare handler's, p99 under 20 ms at 200 requests/s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from common import (
    HUTCH,
    ROOT,
    LoadResult,
    clean_env,
    free_port,
    post_each,
    print_table,
    process,
    unlimited_plans,
    wait_for,
)
from hutch.db.embedded import EmbeddedPostgres

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers

TOKEN = "424242424:AAE_bench_token_for_the_bench_bot"
THROUGHPUT = 3000
LATENCY = 1000
PACED_RATE = 200
PACED_SECONDS = 10
END_TO_END = 100
update_ids = itertools.count(1)


SENDERS = [Sender(id=5_550_000 + n, username=f"user{n}") for n in range(500)]  # many people, many chats


def updates(n: int) -> list[dict[str, Any]]:
    return [
        text_update("How long is the warranty?", sender=SENDERS[i % len(SENDERS)], update_id=next(update_ids))
        for i in range(n)
    ]


async def _closed_loop(
    url: str, headers: dict[str, str], bodies: list[dict[str, Any]], concurrency: int
) -> LoadResult:
    sent_headers = {**headers, "Content-Type": "application/json"}
    return await post_each(url, [(json.dumps(body).encode(), sent_headers) for body in bodies], concurrency)


async def _paced(url: str, headers: dict[str, str], rate: int, seconds: int) -> LoadResult:
    """Open loop: a request every 1/rate s whatever the answers do, so queueing shows in the latency."""
    bodies = updates(rate * seconds)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def one(body: dict[str, Any]) -> None:
            t0 = time.perf_counter()
            response = await client.post(url, json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")

        started = time.perf_counter()
        tasks = []
        for n, body in enumerate(bodies):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        return LoadResult(len(bodies), 0, time.perf_counter() - started, latencies)


def measure(url: str, headers: dict[str, str]) -> tuple[LoadResult, LoadResult, LoadResult]:
    asyncio.run(_closed_loop(url, headers, updates(200), 16))
    throughput = asyncio.run(_closed_loop(url, headers, updates(THROUGHPUT), 16))
    latency = asyncio.run(_closed_loop(url, headers, updates(LATENCY), 1))
    paced = asyncio.run(_paced(url, headers, PACED_RATE, PACED_SECONDS))
    return throughput, latency, paced


def connect_bot(base: str) -> str:
    """Sign up, create a demo-model agent and connect the bench bot; the channel id."""
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "tg@example.com", "password": "bench password 1"}
        )
        auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        agent = client.post(
            "/api/v1/agents", json={"name": "Bench bot", "model": "demo/echo"}, headers=auth
        ).json()
        channel = client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": TOKEN}, headers=auth
        )
        channel.raise_for_status()
        return str(channel.json()["id"])


def end_to_end(url: str, headers: dict[str, str], telegram: FakeTelegramServer) -> list[float]:
    """Seconds from posting an update to the fake receiving the reply, one update at a time."""
    times = []
    with httpx.Client(timeout=30, headers=headers) as client:
        for _ in range(END_TO_END + 10):
            before = len(telegram.sent_messages(Sender().id))
            t0 = time.perf_counter()
            client.post(url, json=text_update("Hello", update_id=next(update_ids))).raise_for_status()
            while len(telegram.sent_messages(Sender().id)) == before:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError("no reply within 30 s")
                time.sleep(0.001)
            times.append((time.perf_counter() - t0) * 1000)
    return times[10:]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    telegram = FakeTelegramServer()
    telegram.start()
    telegram.add_bot(TOKEN, "bench_bot")
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "data")
        url = postgres.start()
        try:
            plans = unlimited_plans(Path(tmp))
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_TELEGRAM_API_BASE=telegram.base_url,
                HUTCH_PLANS_FILE=str(plans),
                HUTCH_PUBLIC_URL="https://hutch.example",
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env):
                wait_for(f"{base}/readyz")
                channel_id = connect_bot(base)
                webhook = telegram.webhook(TOKEN)
                assert webhook is not None
                headers = webhook_headers(webhook.secret_token)
                hutch = measure(f"{base}/webhooks/telegram/{channel_id}", headers)
                # The reply jobs of all those updates are queued; the worker drains them first.
                with process([*HUTCH, "worker", "--concurrency", "4"], env):
                    backlog_started = time.perf_counter()
                    total = THROUGHPUT + LATENCY + PACED_RATE * PACED_SECONDS + 200
                    while len(telegram.sent_messages()) < total:
                        if time.perf_counter() - backlog_started > 600:
                            raise RuntimeError("the worker did not drain the backlog within 10 minutes")
                        time.sleep(0.2)
                    drained = time.perf_counter() - backlog_started
                    e2e = end_to_end(f"{base}/webhooks/telegram/{channel_id}", headers, telegram)

            bare_port = free_port()
            bare_args = [sys.executable, "-m", "uvicorn", "bare_webhook_app:app", "--port", str(bare_port)]
            bare_args += ["--log-level", "warning", "--no-access-log", "--app-dir", str(ROOT / "bench")]
            with process(bare_args, clean_env(BENCH_DATABASE_URL=url)):
                wait_for(f"http://127.0.0.1:{bare_port}/healthz")
                bare = measure(f"http://127.0.0.1:{bare_port}/webhook", {})
        finally:
            postgres.stop()
            telegram.stop()

    rows = []
    for name, (tp, lat, paced) in (("bare FastAPI, one INSERT", bare), ("Hutch /webhooks/telegram", hutch)):
        rows.append(
            [name, tp.rps, lat.percentile(50), lat.percentile(99), paced.percentile(50), paced.percentile(99)]
        )
    print_table(
        f"Telegram update acknowledgement: req/s over 16 connections ({THROUGHPUT} updates), latency over 1 "
        f"connection ({LATENCY}), and at a steady {PACED_RATE} req/s for {PACED_SECONDS} s",
        ["handler", "req/s", "p50 ms", "p99 ms", f"p50 ms @{PACED_RATE}/s", f"p99 ms @{PACED_RATE}/s"],
        rows,
    )
    print(f"  Hutch vs bare: {hutch[0].rps / bare[0].rps:.0%} of the throughput (target: at least 60%)")
    print_table(
        f"Update to reply at the fake Telegram server, one at a time ({END_TO_END} updates, demo model, "
        "one `hutch worker`)",
        ["p50 ms", "p95 ms", "p99 ms", f"backlog of {total} replies drained in s"],
        [[pct(e2e, 50), pct(e2e, 95), pct(e2e, 99), drained]],
    )


if __name__ == "__main__":
    main()
