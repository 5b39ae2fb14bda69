"""What the per-person limit (fair use) adds to a turn's admission.

`Quotas`-level admission, side by side in one run, on the PostgreSQL limiter with its own pool (what
`hutch serve` uses without Redis): the org's per-minute rate alone (a member's own chat), then with the
per-person limits too (a stranger's message: its minute and day counters, counted at once). Rounds
alternate so both see the same machine. Target: the per-person limit adds under 1 ms p50.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import HUTCH, clean_env, print_table
from hutch.accounts.models import Org
from hutch.billing.plans import Plan, PlanCatalog, PlanLimits
from hutch.billing.quotas import Quotas
from hutch.core.ratelimit import PostgresRateLimiter
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import asyncpg_url

ROUNDS = 10
PER_ROUND = 300
BIG = 10**9  # limits never reached: every admission is allowed, as most are


async def timed(admit: Callable[[int], Awaitable[None]], n: int, offset: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await admit(offset + i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run(url: str) -> None:
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
        await quotas.admit_end_user("org_bench", "agt_bench", f"telegram:{i % 50}", None, None)
        await quotas.admit_message("org_bench")

    await timed(org_only, 200, 0)  # warm the pool and the table
    await timed(with_person, 200, 0)
    without: list[float] = []
    with_limit: list[float] = []
    for r in range(ROUNDS):
        without += await timed(org_only, PER_ROUND, r * PER_ROUND)
        with_limit += await timed(with_person, PER_ROUND, r * PER_ROUND)
    await limiter.aclose()

    def pct(samples: list[float], p: float) -> float:
        return statistics.quantiles(samples, n=100)[int(p) - 1]

    base50, base99 = statistics.median(without), pct(without, 99)
    rows = [
        ["org rate only (member)", len(without), base50, base99, 1.0],
        [
            "org rate + per-person minute and day",
            len(with_limit),
            statistics.median(with_limit),
            pct(with_limit, 99),
            statistics.median(with_limit) / base50,
        ],
    ]
    print_table(
        "Admission on the PostgreSQL limiter (ms per message)",
        ["admission", "messages", "p50 ms", "p99 ms", "ratio p50"],
        rows,
    )
    added = statistics.median(with_limit) - base50
    print(f"\n  the per-person limit adds {added:.3f} ms p50 (target: under 1 ms)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            env = clean_env(HUTCH_DATABASE_URL=url, HUTCH_DATA_DIR=str(Path(tmp) / "data"))
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            asyncio.run(run(url))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
