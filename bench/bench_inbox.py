# ruff: noqa: E501 - the generating SQL reads best as whole lines
"""The inbox of one busy org: 10,000 conversations and 500,000 messages across channels.

The data is generated in PostgreSQL (generate_series) for an org made through the API. One `hutch serve`
answers; each listing is called 20 times after a warm-up, over HTTP: the newest page, a filtered page, a deep
page, and full-text searches for a rare and a common word. Then a member holds a conversation whose event
stream is open, and replies 10 times: the time from sending each reply to its event arriving on the stream.
Targets: a page under 100 ms (p95), a search under 200 ms (p95), a new message on the stream under 1 s.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg

from common import HUTCH, clean_env, free_port, print_table, process, unlimited_plans, wait_for
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import libpq_conninfo

CONVERSATIONS = 10_000
PER_CONVERSATION = 50  # 500,000 messages
CALLS = 20
REPLIES = 10

# Words drawn so that 'w<n>' for small n is common and for large n rare: a realistic spread for search.
GENERATE = [
    """INSERT INTO conversations (id, org_id, agent_id, channel, end_user, title, message_count, created_at,
                                  last_message_at, closed_at, status)
       SELECT 'cnv_i' || k, %(org)s, %(agent)s, (ARRAY['telegram','whatsapp','webchat','api'])[1 + k % 4],
              (ARRAY['telegram:','whatsapp:+1555','webchat:chn_x:visitor','key:'])[1 + k % 4] || k, 'Question ' || k,
              %(per)s, now() - (k %% 90) * interval '1 day', now() - k * interval '1 minute',
              CASE WHEN k % 10 = 0 THEN now() END,
              CASE WHEN k % 50 = 1 THEN 'needs_human' ELSE 'open' END
       FROM generate_series(1, %(conversations)s) k""",
    """INSERT INTO end_users (id, org_id, channel, external_id, display_name)
       SELECT 'eu_i' || k, org_id, channel, end_user, 'Person ' || k
       FROM conversations c, LATERAL (SELECT substr(c.id, 6)::int AS k) n WHERE c.id LIKE 'cnv_i%%'""",
    """INSERT INTO messages (id, org_id, conversation_id, channel, seq, role, content, tool_calls, model, input_tokens,
                             output_tokens, cost_micro_usd, byok, status, created_at)
       SELECT c.id || '_' || s, c.org_id, c.id, c.channel, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
              'About my order ' || s || ': w' || ((k * 31 + s * 17) % 50) || ' and w' || (50 + (k * 7919 + s * 104729) % 20000)
              || ' please, the delivery was expected on ' || (k % 28 + 1) || ' March',
              '[]', CASE WHEN s % 2 = 0 THEN 'openai/gpt-4o-mini' END, 40, 60, 45, false, 'ok',
              c.last_message_at - (%(per)s - s) * interval '10 seconds'
       FROM conversations c, LATERAL (SELECT substr(c.id, 6)::int AS k) n, generate_series(1, %(per)s) s
       WHERE c.id LIKE 'cnv_i%%'""",
    "ANALYZE",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(client: httpx.Client, path: str, auth: dict[str, str]) -> tuple[float, float, int]:
    total = client.get(path, headers=auth).raise_for_status().json()["total"]
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        client.get(path, headers=auth).raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 50), percentile(times, 95), total


def stream_latency(
    base: str, conversation_id: str, auth: dict[str, str], client: httpx.Client
) -> list[float]:
    """Seconds from posting each reply to its event arriving on an open stream."""
    arrivals: queue.Queue[tuple[float, str]] = queue.Queue()
    opened = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        events = f"/api/v1/conversations/{conversation_id}/events"
        with (
            httpx.Client(base_url=base, timeout=None) as sse,
            sse.stream("GET", events, headers=auth) as response,
        ):
            for line in response.iter_lines():
                opened.set()
                if stop.is_set():
                    return
                if line.startswith("data: "):
                    arrivals.put((time.perf_counter(), json.loads(line[6:])["content"]))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    opened.wait(10)
    client.post(f"/api/v1/conversations/{conversation_id}/takeover", headers=auth).raise_for_status()
    latencies = []
    for n in range(REPLIES):
        text = f"reply {n}"
        sent = time.perf_counter()
        client.post(
            f"/api/v1/conversations/{conversation_id}/reply", json={"content": text}, headers=auth
        ).raise_for_status()
        while True:
            arrived, content = arrivals.get(timeout=10)
            if content == text:
                latencies.append(arrived - sent)
                break
        time.sleep(0.3)  # replies spread over time, as people type
    stop.set()
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_PLANS_FILE=str(unlimited_plans(Path(tmp))),
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with (
                process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env),
                httpx.Client(base_url=base, timeout=60) as client,
            ):
                wait_for(f"{base}/readyz")
                credentials = {"email": "owner@bench.example", "password": "bench password 1"}
                client.post("/api/v1/auth/signup", json=credentials).raise_for_status()
                token = client.post("/api/v1/auth/login", json=credentials).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                org = client.get("/api/v1/org", headers=auth).raise_for_status().json()["id"]
                agent = (
                    client.post("/api/v1/agents", json={"name": "Shop"}, headers=auth)
                    .raise_for_status()
                    .json()
                )
                started = time.perf_counter()
                with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
                    for statement in GENERATE:
                        sql = (
                            statement.replace("%(org)s", f"'{org}'")
                            .replace("%(agent)s", f"'{agent['id']}'")
                            .replace("%(conversations)s", str(CONVERSATIONS))
                            .replace("%(per)s", str(PER_CONVERSATION))
                            .replace("%%", "%")
                        )
                        conn.execute(sql.encode())  # no parameters: '%' stays the modulo operator
                    counts = conn.execute(
                        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
                    ).fetchone()
                generated = time.perf_counter() - started
                rows = []
                for name, path, target in (
                    ("newest page (50)", "/api/v1/conversations?limit=50", 100),
                    ("page, one channel", "/api/v1/conversations?channel=whatsapp&limit=50", 100),
                    ("page, needs_human", "/api/v1/conversations?status=needs_human&limit=50", 100),
                    ("deep page (skip 9,000)", "/api/v1/conversations?skip=9000&limit=50", 100),
                    ("search, rare word", "/api/v1/conversations?q=w12345&limit=50", 200),
                    ("search, common word", "/api/v1/conversations?q=w7&limit=50", 200),
                    ("search, phrase", '/api/v1/conversations?q="w7 and"&limit=50', 200),
                ):
                    p50, p95, total = timed(client, path, auth)
                    rows.append(
                        [
                            name,
                            f"{total:,}",
                            f"{p50:.1f}",
                            f"{p95:.1f}",
                            f"< {target}",
                            "yes" if p95 < target else "NO",
                        ]
                    )
                conversation = client.get("/api/v1/conversations?limit=1", headers=auth).json()["items"][0][
                    "id"
                ]
                latencies = stream_latency(base, conversation, auth, client)
                p50, p95 = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
                rows.append(
                    [
                        "new message on an open stream",
                        f"{REPLIES}",
                        f"{p50:.0f}",
                        f"{p95:.0f}",
                        "< 1000",
                        "yes" if p95 < 1000 else "NO",
                    ]
                )
        finally:
            postgres.stop()
    assert counts is not None
    print_table(
        f"Inbox of one org: {counts[0]:,} conversations, {counts[1]:,} messages (generated in {generated:.0f} s); "
        f"{CALLS} calls each over HTTP",
        ["request", "matches", "p50 ms", "p95 ms", "target ms", "met"],
        rows,
    )


if __name__ == "__main__":
    main()
