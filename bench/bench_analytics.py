# ruff: noqa: E501 - the generating SQL reads best as whole lines
"""Admin analytics on a year of data for 10,000 organisations: p50/p95 of each endpoint.

The data is generated in PostgreSQL (generate_series): 10,000 orgs with an owner each, a year of monthly
subscription payments and occasional purchases, 200 conversations a day across channels with their
messages, daily usage rows, and voice sessions. One `hutch serve` answers; each endpoint is called 20 times
after a warm-up, over HTTP. Target: under 200 ms.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from common import HUTCH, clean_env, free_port, print_table, process, wait_for
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import libpq_conninfo

ORGS = 10_000
CALLS = 20

GENERATE = [
    """INSERT INTO orgs (id, name, plan, created_at)
       SELECT 'org_b' || n, 'Org ' || n, CASE WHEN n % 3 = 0 THEN 'starter' ELSE 'free' END,
              now() - interval '400 days'
       FROM generate_series(1, %(orgs)s) n""",
    """INSERT INTO users (id, email, name, password_hash, is_platform_admin, created_at, last_active_at)
       SELECT 'usr_b' || n, 'u' || n || '@bench.example', 'User ' || n, 'x', false, now() - interval '400 days',
              now() - (n % 60) * interval '1 day'
       FROM generate_series(1, %(orgs)s) n""",
    """INSERT INTO memberships (org_id, user_id, role, created_at)
       SELECT 'org_b' || n, 'usr_b' || n, 'owner', now() - interval '400 days' FROM generate_series(1, %(orgs)s) n""",
    """INSERT INTO billing_accounts (org_id, status, subscribed_plan, cancel_at_period_end, first_purchase_done,
                                     stripe_state_at, created_at)
       SELECT 'org_b' || n, CASE WHEN n % 30 = 0 THEN 'canceled' ELSE 'active' END, 'starter', false, false,
              now() - (n % 365) * interval '1 day', now() - interval '400 days'
       FROM generate_series(3, %(orgs)s, 3) n""",
    """INSERT INTO revenue_events (id, org_id, source, kind, amount_cents, currency, plan, occurred_at)
       SELECT 'rev_b' || n || '_' || m, 'org_b' || n, 'inv_' || n || '_' || m, 'subscription', 1900, 'usd',
              'starter', now() - m * interval '30 days' - (n % 30) * interval '1 day'
       FROM generate_series(3, %(orgs)s, 3) n, generate_series(0, 11) m""",
    """INSERT INTO revenue_events (id, org_id, source, kind, amount_cents, currency, plan, occurred_at)
       SELECT 'rev_p' || n || '_' || m, 'org_b' || n, 'cs_' || n || '_' || m, 'purchase', 1000, 'usd', NULL,
              now() - (m * 73 + n % 73) * interval '1 day'
       FROM generate_series(1, %(orgs)s, 5) n, generate_series(0, 4) m""",
    """INSERT INTO agents (id, org_id, slug, name, role, system_prompt, model, temperature, max_tokens, audience,
                           placement, tools, status, created_at, updated_at)
       SELECT 'agt_b' || n, 'org_b' || n, 'a' || n, 'Agent ' || n, 'assistant', 'p', 'openai/gpt-4o-mini', 0.5,
              500, 'public', 'shared', '{}', 'active', now() - interval '400 days', now()
       FROM generate_series(1, %(orgs)s) n""",
    """INSERT INTO conversations (id, org_id, agent_id, channel, end_user, title, message_count, created_at,
                                  last_message_at, closed_at)
       SELECT 'cnv_b' || d || '_' || k, 'org_b' || (1 + (d * 200 + k) % %(orgs)s), 'agt_b' || (1 + (d * 200 + k) % %(orgs)s),
              (ARRAY['api','telegram','whatsapp','webchat'])[1 + k % 4], 'u' || k, 't', 4,
              now() - d * interval '1 day', now() - d * interval '1 day', now() - d * interval '1 day'
       FROM generate_series(0, 364) d, generate_series(0, 199) k""",
    """INSERT INTO messages (id, org_id, conversation_id, channel, seq, role, content, tool_calls, model, input_tokens,
                             output_tokens, cost_micro_usd, byok, status, created_at)
       SELECT c.id || '_' || s, c.org_id, c.id, c.channel, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END, 'x',
              '[]', CASE WHEN s % 2 = 0 THEN 'openai/gpt-4o-mini' END, 40, 60, 45, false, 'ok', c.created_at
       FROM conversations c, generate_series(1, 4) s WHERE c.id LIKE 'cnv_b%%'""",
    """INSERT INTO voice_sessions (id, org_id, agent_id, identity, room, status, untracked, expires_at,
                                   started_at, ended_at, seconds, charged_seconds, created_at)
       SELECT 'vs_b' || n, 'org_b' || (1 + n % %(orgs)s), 'agt_b' || (1 + n % %(orgs)s), 'user:x', 'room_' || n,
              'ended', false, now(), now() - (n % 365) * interval '1 day', now(), 300 + n % 600, 300, now()
       FROM generate_series(1, 50000) n""",
    "ANALYZE",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            env = clean_env(
                HUTCH_DATABASE_URL=url, HUTCH_DATA_DIR=str(Path(tmp) / "data"), HUTCH_LOG_LEVEL="WARNING"
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            started = time.perf_counter()
            with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
                for statement in GENERATE:
                    sql = statement.replace("%(orgs)s", str(ORGS)).replace("%%", "%")
                    conn.execute(sql.encode())  # no parameters: '%' stays the modulo operator
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM revenue_events)"
                ).fetchone()
            generated = time.perf_counter() - started
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with (
                process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env),
                httpx.Client(base_url=base, timeout=60) as client,
            ):
                wait_for(f"{base}/readyz")
                signup = client.post(
                    "/api/v1/auth/signup",
                    json={"email": "root@bench.example", "password": "bench password 1"},
                )
                subprocess.run(
                    [*HUTCH, "admin", "grant", "--email", "root@bench.example"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                token = client.post(
                    "/api/v1/auth/login", json={"email": "root@bench.example", "password": "bench password 1"}
                ).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                assert signup.status_code == 201
                rows = []
                for name, path in (
                    ("stats", "/api/v1/admin/stats"),
                    ("revenue, 365 days, UTC", "/api/v1/admin/analytics/revenue?days=365"),
                    (
                        "revenue, 30 days, Europe/Paris",
                        "/api/v1/admin/analytics/revenue?days=30&tz=Europe/Paris",
                    ),
                    ("usage, 365 days, UTC", "/api/v1/admin/analytics/usage?days=365"),
                    ("usage, 30 days, Europe/Paris", "/api/v1/admin/analytics/usage?days=30&tz=Europe/Paris"),
                    ("orgs, first page", "/api/v1/admin/orgs?limit=50"),
                    ("users, search", "/api/v1/admin/users?q=u9999&limit=50"),
                ):
                    client.get(path, headers=auth).raise_for_status()
                    times = []
                    for _ in range(CALLS):
                        t0 = time.perf_counter()
                        client.get(path, headers=auth).raise_for_status()
                        times.append((time.perf_counter() - t0) * 1000)
                    rows.append([name, percentile(times, 50), percentile(times, 95)])
        finally:
            postgres.stop()
    assert counts is not None
    print_table(
        f"Admin analytics over a year for {ORGS:,} orgs ({counts[0]:,} messages, {counts[1]:,} payments; "
        f"generated in {generated:.0f} s), {CALLS} calls each over HTTP",
        ["endpoint", "p50 ms", "p95 ms"],
        rows,
    )
    print("  target: under 200 ms")


if __name__ == "__main__":
    main()
