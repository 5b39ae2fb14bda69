"""What the per-person limit (fair use) adds to a Telegram bot's acknowledgement and to its turn.

A real `hutch serve` and `hutch worker` on the embedded PostgreSQL (the rate limiter's default store), a
fake Telegram server, and one organisation with two public demo-model bots: one whose agent sets per-person
limits (a minute's and a day's, never reached), one whose agent sets none. The plan has the org's own
per-minute rate, as every plan Hutch ships with per-person limits has. Side by side in one run, rounds
alternating between the two bots so both see the same machine (for turns, one turn a side per round):

1. the webhook's acknowledgement, one update at a time over one connection;
2. the whole turn: from posting an update to the fake Telegram server receiving the reply (the worker's
   job: admission with the person's two counters, the demo model's answer, storing, `sendMessage`).

Then the admission alone (``Quotas``, no HTTP, no worker): the org's rate, with and without the person's
minute and day, all counted in one round trip. Target: under 1 ms p50 added to each.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path

import httpx

from common import HUTCH, ROOT, clean_env, free_port, print_table, process, wait_for
from hutch.accounts.models import Org
from hutch.billing.plans import Plan, PlanCatalog, PlanLimits
from hutch.billing.quotas import Person, Quotas
from hutch.core.ratelimit import PostgresRateLimiter
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import asyncpg_url

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers

BIG = 100_000  # limits never reached: every message is admitted, as most are
# The org's own per-minute rate, as every plan Hutch ships with per-person limits has.
PLANS = f"""
[[plans]]
id = "free"
name = "Bench"
price_cents = 0
[plans.limits]
messages_per_minute = {BIG}
"""
BOTS = {"first": "424242401:AAE_bench_first_bot_token", "second": "424242402:AAE_bench_second_bot_token"}
SENDERS = [Sender(id=5_560_000 + n, username=f"person{n}") for n in range(40)]
ACK_ROUNDS, ACK_PER_ROUND = 10, 60
TURN_ROUNDS, TURN_PER_ROUND = 1000, 1  # one turn a side at a time: both see the same moment
ADMIT_ROUNDS, ADMIT_PER_ROUND = 6, 200
# Which bot goes first alternates from round to round: going second (just after the other's work) must not
# count against either. Halfway, the bots swap roles (the limits move to the other agent), so neither
# bot's own rows count for or against the limit.
ORDERS = (("first", "second"), ("second", "first"))
update_ids = count(1)


class Bots:
    """One org with two public demo-model agents, each with its bot: the same org, plan and kind of rows,
    so the only difference between them is the per-person limits one agent sets for itself (which one is
    limited swaps halfway: :meth:`limit`)."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        signup = self.client.post(
            "/api/v1/auth/signup", json={"email": "owner@example.com", "password": "bench password 1"}
        )
        signup.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {signup.json()['access_token']}"
        self.agents: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        for name, token in BOTS.items():
            agent = self.client.post("/api/v1/agents", json={"name": f"{name} bot", "model": "demo/echo"})
            agent.raise_for_status()
            self.agents[name] = agent.json()["id"]
            channel = self.client.post(
                f"/api/v1/agents/{self.agents[name]}/channels/telegram", json={"bot_token": token}
            )
            channel.raise_for_status()
            self.urls[name] = f"{base}/webhooks/telegram/{channel.json()['id']}"

    def limit(self, limited: str) -> dict[str, str]:
        """Per-person limits (never reached) on ``limited``'s agent only; each bot's role by name."""
        for name, agent in self.agents.items():
            value = BIG if name == limited else None
            self.client.patch(
                f"/api/v1/agents/{agent}",
                json={"end_user_messages_per_minute": value, "end_user_messages_per_day": value},
            ).raise_for_status()
        return {name: "limited" if name == limited else "unlimited" for name in BOTS}


def acknowledgements(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> list[float]:
    """Milliseconds per acknowledgement, one update at a time."""
    samples = []
    for i in range(n):
        body = text_update("Is it in stock?", sender=SENDERS[i % len(SENDERS)], update_id=next(update_ids))
        started = time.perf_counter()
        client.post(url, json=body, headers=headers).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def turns(
    client: httpx.Client, telegram: FakeTelegramServer, token: str, url: str, headers: dict[str, str], n: int
) -> list[float]:
    """Milliseconds from posting an update to the bot's reply reaching the fake Telegram server."""
    samples = []
    for i in range(n):
        sender = SENDERS[i % len(SENDERS)]
        before = len(telegram.sent_messages(sender.id, token))
        body = text_update("Is it in stock?", sender=sender, update_id=next(update_ids))
        started = time.perf_counter()
        client.post(url, json=body, headers=headers).raise_for_status()
        while len(telegram.sent_messages(sender.id, token)) == before:
            if time.perf_counter() - started > 30:
                raise RuntimeError("no reply within 30 s")
            time.sleep(0.001)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def drained(telegram: FakeTelegramServer, expected: int) -> None:
    deadline = time.monotonic() + 300
    while len(telegram.sent_messages()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not answer the acknowledged updates within 5 minutes")
        time.sleep(0.1)


async def admissions(url: str) -> dict[str, list[float]]:
    """The admission alone, on the PostgreSQL limiter with its own pool (what `hutch serve` uses)."""
    plan = Plan(
        id="free",
        name="Free",
        price_cents=0,
        limits=PlanLimits(
            messages_per_minute=BIG, end_user_messages_per_minute=BIG, end_user_messages_per_day=BIG
        ),
    )
    limiter = PostgresRateLimiter.with_own_pool(asyncpg_url(url))
    quotas = Quotas(None, PlanCatalog(plans=[plan]), limiter)  # type: ignore[arg-type]  # no reads: the org is known
    quotas.knows(Org(id="org_bench", name="Bench", plan="free"))

    async def org_only(_: int) -> None:
        await quotas.admit_message("org_bench")

    async def with_person(i: int) -> None:
        await quotas.admit_message("org_bench", Person("agt_bench", f"telegram:{i % 50}", None, None))

    async def timed(admit: Callable[[int], Awaitable[None]], n: int) -> list[float]:
        samples = []
        for i in range(n):
            started = time.perf_counter()
            await admit(i)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    await timed(org_only, 200)  # warm the pool and the table
    await timed(with_person, 200)
    found: dict[str, list[float]] = {"unlimited": [], "limited": []}
    for _ in range(ADMIT_ROUNDS):
        found["unlimited"] += await timed(org_only, ADMIT_PER_ROUND)
        found["limited"] += await timed(with_person, ADMIT_PER_ROUND)
    await limiter.aclose()
    return found


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def table(title: str, what: str, found: dict[str, list[float]]) -> float:
    """Print the two sides and their difference; the p50 added by the per-person limit."""
    without, with_limit = found["unlimited"], found["limited"]
    base50, base99 = statistics.median(without), p99(without)
    added50, added99 = statistics.median(with_limit) - base50, p99(with_limit) - base99
    rows = [
        ["without a per-person limit", len(without), base50, base99],
        ["with a per-person limit (minute and day)", len(with_limit), base50 + added50, base99 + added99],
        ["difference", "", added50, added99],
    ]
    print_table(
        title,
        [what, "samples", "p50 ms", "p99 ms"],
        [[f"{c:.3f}" if isinstance(c, float) else c for c in row] for row in rows],
    )
    return added50


def main() -> None:
    telegram = FakeTelegramServer()
    telegram.start()
    for name, token in BOTS.items():
        telegram.add_bot(token, f"bench_{name}_bot")
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            plans = Path(tmp) / "plans.toml"
            plans.write_text(PLANS)
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
            acks: dict[str, list[float]] = {"unlimited": [], "limited": []}
            turned: dict[str, list[float]] = {"unlimited": [], "limited": []}
            with process([*HUTCH, "serve", "--no-worker", "--port", str(port)], env):
                wait_for(f"{base}/readyz")
                bots = Bots(base)
                urls = bots.urls
                hooks = {}
                for name, token in BOTS.items():
                    hook = telegram.webhook(token)
                    assert hook is not None
                    hooks[name] = webhook_headers(hook.secret_token)
                with httpx.Client(timeout=30) as client:
                    for name in BOTS:  # warm both paths
                        acknowledgements(client, urls[name], hooks[name], 50)
                    for n in range(ACK_ROUNDS):
                        if n % (ACK_ROUNDS // 2) == 0:
                            role = bots.limit("first" if n < ACK_ROUNDS // 2 else "second")
                        for name in ORDERS[n % 2]:
                            acks[role[name]] += acknowledgements(
                                client, urls[name], hooks[name], ACK_PER_ROUND
                            )
                    with process([*HUTCH, "worker", "--concurrency", "4"], env):
                        drained(telegram, 2 * 50 + 2 * ACK_ROUNDS * ACK_PER_ROUND)  # the acknowledged updates
                        for name, token in BOTS.items():  # warm both turns
                            turns(client, telegram, token, urls[name], hooks[name], 10)
                        for n in range(TURN_ROUNDS):
                            if n % (TURN_ROUNDS // 2) == 0:
                                role = bots.limit("first" if n < TURN_ROUNDS // 2 else "second")
                            for name in ORDERS[n % 2]:
                                turned[role[name]] += turns(
                                    client, telegram, BOTS[name], urls[name], hooks[name], TURN_PER_ROUND
                                )
                bots.client.close()
            admitted = asyncio.run(admissions(url))
        finally:
            postgres.stop()
            telegram.stop()

    ack = table("Telegram webhook acknowledgement, one at a time (ms)", "bot", acks)
    turn = table("Telegram turn: update posted to reply received, one at a time (ms)", "bot", turned)
    admit = table("Admission alone on the PostgreSQL limiter (ms per message)", "admission", admitted)
    print(
        f"\n  the per-person limit adds {ack:.3f} ms p50 to the acknowledgement, {turn:.3f} ms p50 to the "
        f"turn and {admit:.3f} ms p50 to the admission (target: under 1 ms)"
    )


if __name__ == "__main__":
    main()
