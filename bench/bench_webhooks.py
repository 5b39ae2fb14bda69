"""Stripe webhook handling: `POST /webhooks/stripe` of a real `hutch serve` against a bare FastAPI handler.

The stream is `invoice.payment_succeeded` events for a subscribed org, 10% of them replays of earlier
events (Stripe retries). Hutch verifies each signature, stores the event id once, and for a new event
records the revenue; a replay is answered without a second effect. The reference stores each body with
one INSERT and nothing else. Both run on the same embedded PostgreSQL, one process each, same load
generator (16 connections for throughput, 1 for latency), in the same run.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from common import HUTCH, ROOT, LoadResult, clean_env, free_port, post_each, print_table, process, wait_for
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import libpq_conninfo

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.stripe_signing import sign_event

SECRET = "whsec_bench_0123456789abcdef"
CUSTOMER = "cus_bench"
THROUGHPUT_EVENTS = 3000
LATENCY_EVENTS = 1000
REPLAY_SHARE = 0.10


def invoice_events(n: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` events, about 10% of them repeats of an earlier one, in a seeded random order."""
    rng = random.Random(7)
    unique = round(n * (1 - REPLAY_SHARE))
    now = int(time.time())
    fresh = [
        {
            "id": f"evt_{prefix}_{i}",
            "object": "event",
            "type": "invoice.payment_succeeded",
            "created": now,
            "data": {
                "object": {
                    "id": f"in_{prefix}_{i}",
                    "object": "invoice",
                    "customer": CUSTOMER,
                    "amount_paid": 1900,
                    "currency": "usd",
                    "parent": {"subscription_details": {"subscription": "sub_bench"}},
                }
            },
        }
        for i in range(unique)
    ]
    stream = list(fresh)
    for _ in range(n - unique):
        position = rng.randrange(1, len(stream))
        stream.insert(position, rng.choice(stream[:position]))
    return stream


async def _post_all(url: str, events: list[dict[str, Any]], concurrency: int) -> LoadResult:
    signed = [sign_event(e, SECRET) for e in events]  # signed just before sending: within the tolerance
    return await post_each(url, [(payload.body, payload.headers) for payload in signed], concurrency)


def measure(url: str, prefix: str) -> tuple[LoadResult, LoadResult]:
    asyncio.run(_post_all(url, invoice_events(200, f"{prefix}warm"), 16))
    throughput = asyncio.run(_post_all(url, invoice_events(THROUGHPUT_EVENTS, f"{prefix}tp"), 16))
    latency = asyncio.run(_post_all(url, invoice_events(LATENCY_EVENTS, f"{prefix}lat"), 1))
    return throughput, latency


def subscribed_org(base: str, database_url: str) -> str:
    signup = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 1"}
    )
    signup.raise_for_status()
    org_id = str(signup.json()["org"]["id"])
    with psycopg.connect(libpq_conninfo(database_url)) as conn:
        conn.execute(
            "INSERT INTO billing_accounts (org_id, stripe_customer_id, stripe_subscription_id, status, "
            "subscribed_plan, cancel_at_period_end, first_purchase_done, created_at) "
            "VALUES (%s, %s, 'sub_bench', 'active', 'starter', false, false, now())",
            (org_id, CUSTOMER),
        )
    return org_id


def revenue_rows(database_url: str, org_id: str) -> int:
    with psycopg.connect(libpq_conninfo(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM revenue_events WHERE org_id = %s", (org_id,)).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "data")
        url = postgres.start()
        try:
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_STRIPE_WEBHOOK_SECRET=SECRET,
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env):
                wait_for(f"{base}/readyz")
                org_id = subscribed_org(base, url)
                hutch = measure(f"{base}/webhooks/stripe", "h")
                stored = revenue_rows(url, org_id)

            bare_port = free_port()
            bare_env = clean_env(BENCH_DATABASE_URL=url)
            bare_args = [sys.executable, "-m", "uvicorn", "bare_webhook_app:app", "--port", str(bare_port)]
            bare_args += ["--log-level", "warning", "--no-access-log", "--app-dir", str(ROOT / "bench")]
            with process(bare_args, bare_env):
                wait_for(f"http://127.0.0.1:{bare_port}/healthz")
                bare = measure(f"http://127.0.0.1:{bare_port}/webhook", "b")
        finally:
            postgres.stop()

    unique_events = sum(round(n * (1 - REPLAY_SHARE)) for n in (200, THROUGHPUT_EVENTS, LATENCY_EVENTS))
    rows = []
    for name, (tp, lat) in (("bare FastAPI, one INSERT", bare), ("Hutch /webhooks/stripe", hutch)):
        rows.append([name, tp.rps, lat.percentile(50), lat.percentile(99), tp.percentile(99)])
    print_table(
        f"invoice.payment_succeeded, {REPLAY_SHARE:.0%} replays: req/s over 16 connections "
        f"({THROUGHPUT_EVENTS} events), latency over 1 connection ({LATENCY_EVENTS} events)",
        ["handler", "req/s", "p50 ms", "p99 ms", "p99 ms under load"],
        rows,
    )
    print(f"  Hutch vs bare: {hutch[0].rps / bare[0].rps:.2f}x the throughput")
    print(f"  revenue events Hutch stored: {stored} (unique invoices sent: {unique_events})")


if __name__ == "__main__":
    main()
