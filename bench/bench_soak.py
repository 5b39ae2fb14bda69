"""Load and soak: a mix of real traffic against `hutch serve` and `hutch worker` for minutes on end.

The mix, drawn at random per request over 8 connections: 40% Telegram webhooks (each a new update from one of
500 chats, answered by the worker through the fake Telegram server), 25% OpenAI-compatible chat completions
(the agent on the fake upstream, with an end user, so the exchange is stored), 25% dashboard pages read with
a signed-in session, 10% Stripe webhooks (signed events). It reports throughput, p50/p99 and errors per kind,
and the memory (RSS) of the API and worker processes sampled every 10 s: growth is measured from the end of
the first minute (warm caches) to the end. Target: growth under 10%, no errors.

    python bench/bench_soak.py [SECONDS]        # default 600 (ten minutes)
    BENCH_PROFILE=1 python bench/bench_soak.py 60   # py-spy samples of the API: $BENCH_LOGS/api.profile
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common import HUTCH, ROOT, clean_env, free_port, print_table, process, unlimited_plans, wait_for
from hutch.db.embedded import EmbeddedPostgres

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.stripe_signing import sign_event
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers

TOKEN = "424242424:AAE_soak_token_for_the_soak_bot"
CONCURRENCY = 8
MIX = [("telegram", 40), ("chat", 25), ("dashboard", 25), ("stripe", 10)]
WEBHOOK_SECRET = "whsec_soak0123456789abcdef0123456789ab"
SENDERS = [Sender(id=7_770_000 + n, username=f"soak{n}") for n in range(500)]
LOGS = Path(os.environ.get("BENCH_LOGS", tempfile.gettempdir()))  # the processes' output, for a look after
update_ids = itertools.count(1)
event_ids = itertools.count(1)


@dataclass
class Kind:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn or worker subprocesses), in MB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def set_up(base: str) -> tuple[str, str, dict[str, str], str]:
    """An owner, an agent on the fake upstream with the Telegram bot, a chat key and a dashboard session."""
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "soak@example.com", "password": "soak password 1"}
        )
        auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        agent = client.post(
            "/api/v1/agents", json={"name": "Soak", "model": "openai/gpt-4o-mini"}, headers=auth
        ).json()
        channel = client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": TOKEN}, headers=auth
        ).json()
        key = client.post(
            "/api/v1/api-keys",
            json={"label": "soak", "scopes": ["chat"], "rate_limit_per_minute": 100_000},
            headers=auth,
        ).json()
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        login = client.post(
            "/login", data={"csrf": csrf.group(1), "email": "soak@example.com", "password": "soak password 1"}
        )
        assert login.status_code == 303
        return agent["slug"], channel["id"], {"hutch_session": client.cookies["hutch_session"]}, key["key"]


async def soak(
    base: str, seconds: float, telegram: FakeTelegramServer, pids: list[int]
) -> tuple[dict[str, Kind], list[tuple[float, float]], float]:
    slug, channel_id, cookies, key = await asyncio.to_thread(set_up, base)
    webhook = telegram.webhook(TOKEN)
    assert webhook is not None
    tg_headers = {**webhook_headers(webhook.secret_token), "Content-Type": "application/json"}
    kinds = {name: Kind() for name, _ in MIX}
    names, weights = zip(*MIX, strict=True)
    rng = random.Random(11)
    memory: list[tuple[float, float]] = []
    started = time.perf_counter()
    deadline = started + seconds
    pages = ["/app/agents", "/app/usage", "/app/billing", "/app/api-keys"]
    limits = httpx.Limits(max_connections=CONCURRENCY + 2, max_keepalive_connections=CONCURRENCY + 2)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, cookies=cookies) as client:

        async def one(kind: str) -> httpx.Response:
            if kind == "telegram":
                sender = SENDERS[next(update_ids) % len(SENDERS)]
                body = text_update("How long is the warranty?", sender=sender, update_id=next(update_ids))
                return await client.post(
                    f"/webhooks/telegram/{channel_id}", content=json.dumps(body), headers=tg_headers
                )
            if kind == "chat":
                body = {
                    "model": slug,
                    "messages": [{"role": "user", "content": "Hello"}],
                    "user": f"u{rng.randint(1, 200)}",
                }
                return await client.post(
                    "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                )
            if kind == "dashboard":
                return await client.get(rng.choice(pages))
            event = {
                "id": f"evt_soak_{next(event_ids)}",
                "object": "event",
                "type": "customer.created",
                "created": int(time.time()),
                "data": {"object": {"id": "cus_soak", "object": "customer"}},
            }
            signed = sign_event(event, WEBHOOK_SECRET)
            return await client.post("/webhooks/stripe", content=signed.body, headers=signed.headers)

        async def worker() -> None:
            while time.perf_counter() < deadline:
                kind = rng.choices(names, weights)[0]
                t0 = time.perf_counter()
                try:
                    response = await one(kind)
                    problem = (
                        f"{response.status_code} {response.text[:200]}" if response.status_code >= 400 else ""
                    )
                except httpx.HTTPError as error:
                    problem = f"{error.__class__.__name__}: {error}"
                kinds[kind].latencies.append((time.perf_counter() - t0) * 1000)
                if problem:
                    kinds[kind].errors += 1
                    kinds[kind].first_error = kinds[kind].first_error or problem

        async def sample() -> None:
            while time.perf_counter() < deadline:
                each = [rss_mb(pid) for pid in pids]
                memory.append((time.perf_counter() - started, sum(each)))
                done = sum(len(k.latencies) for k in kinds.values())
                shown = " + ".join(f"{mb:.0f}" for mb in each)
                print(f"  {memory[-1][0]:5.0f} s  {shown} MB  {done:,} requests", flush=True)
                await asyncio.sleep(10)

        await asyncio.gather(sample(), *(worker() for _ in range(CONCURRENCY)))
    return kinds, memory, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    telegram = FakeTelegramServer()
    telegram.start()
    telegram.add_bot(TOKEN, "soak_bot")
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "data")
        url = postgres.start()
        upstream_port = free_port()
        try:
            plans = unlimited_plans(Path(tmp))
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_TELEGRAM_API_BASE=telegram.base_url,
                HUTCH_PLANS_FILE=str(plans),
                HUTCH_PUBLIC_URL="https://hutch.example",
                HUTCH_OPENAI_API_KEY="sk-soak-upstream",
                HUTCH_OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
                HUTCH_STRIPE_SECRET_KEY="sk_test_soak",
                HUTCH_STRIPE_API_BASE="http://127.0.0.1:9",
                HUTCH_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            upstream = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(upstream_port)]
            with (
                process(upstream, clean_env()),
                process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env, LOGS / "api.log") as api,
                process([*HUTCH, "worker", "--concurrency", "4"], env, LOGS / "worker.log") as worker,
            ):
                wait_for(f"{base}/readyz")
                if os.environ.get("BENCH_PROFILE"):  # py-spy samples the API (`pip install py-spy`)
                    subprocess.Popen(
                        [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "-p",
                         str(api.pid), "-d", str(int(seconds)), "-f", "raw", "-o", str(LOGS / "api.profile")],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                print(f"Soaking for {seconds:.0f} s…", flush=True)
                kinds, memory, elapsed = asyncio.run(soak(base, seconds, telegram, [api.pid, worker.pid]))
                answered = len(telegram.sent_messages())
        finally:
            postgres.stop()
            telegram.stop()

    rows = []
    for name, kind in kinds.items():
        count = len(kind.latencies)
        rows.append([name, count, count / elapsed, pct(kind.latencies, 50), pct(kind.latencies, 99),
                     f"{kind.errors / count:.2%}" if count else "-"])  # fmt: skip
    total = sum(len(k.latencies) for k in kinds.values())
    errors = sum(k.errors for k in kinds.values())
    every = [x for k in kinds.values() for x in k.latencies]
    rows.append(
        ["all", total, total / elapsed, pct(every, 50), pct(every, 99), f"{errors / max(total, 1):.2%}"]
    )
    print_table(
        f"Mixed load for {elapsed:.0f} s over {CONCURRENCY} connections",
        ["kind", "requests", "req/s", "p50 ms", "p99 ms", "errors"],
        rows,
    )
    warm = next((mb for at, mb in memory if at >= 60), memory[0][1] if memory else 0.0)
    last = memory[-1][1] if memory else 0.0
    growth = (last - warm) / warm if warm else 0.0
    print_table(
        "Memory of the API and worker processes (RSS)",
        ["after 1 min MB", "at the end MB", "growth", "Telegram replies sent"],
        [[warm, last, f"{growth:+.1%}", answered]],
    )
    for name, kind in kinds.items():
        if kind.first_error:
            print(f"  first {name} error: {kind.first_error}")
    print(f"  target: growth under 10%, no errors; the processes' logs: {LOGS}/api.log, {LOGS}/worker.log")


if __name__ == "__main__":
    main()
