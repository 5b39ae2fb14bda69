"""Budgets under fire: ``bench_budgets.py [CALLS]`` (default 1,000) sends that many chat completions at once
(aiohttp, one connection each) against an API key with a $5 monthly budget, then against an org on a
pay-per-use plan holding $5 of credits, first to one API process and then spread over two on one
PostgreSQL. Each call costs about six cents at GPT-4o's prices (a long message, echoed by the fake upstream).

The table shows, per case: the cap, what the admitted calls cost (the key's recorded spend, or the model cost
of the org's answers), the overspend past the cap, the largest single call, how many calls were admitted and
refused, and how many 429s (what is left of the cap held by calls in flight) the callers waited out. The
target: overspend no more than one call's cost, and the cap used.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx
import psycopg

from common import HUTCH, ROOT, clean_env, free_port, print_table, process, wait_for
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.urls import libpq_conninfo

CAP_CENTS = 500
UPSTREAM_KEY = "sk-bench-budgets"
RETRY_FOR_SECONDS = 60
LOGS = ROOT / "bench" / "results" / "budgets"  # each API process's output
MESSAGE = "budget " * 2_600  # about 4,500 tokens: a little over one cent of GPT-4o input


def plans_file(directory: Path) -> Path:
    path = directory / "plans.toml"
    path.write_text('[[plans]]\nid = "free"\nname = "Metered"\nprice_cents = 0\npay_per_use = true\n')
    return path


async def fire(bases: list[str], key: str, model: str, calls: int) -> tuple[int, int, int, str]:
    """Send ``calls`` completions at once, round robin over ``bases``; a call answered 429 tries again after
    its ``Retry-After``, as the OpenAI SDKs do, for up to a minute. (admitted, refused, 429s waited out, the
    other answers by status)."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    waited = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> int:
            nonlocal waited
            body = {"model": model, "messages": [{"role": "user", "content": MESSAGE}], "user": f"u{n}"}
            deadline = asyncio.get_running_loop().time() + RETRY_FOR_SECONDS
            while True:
                async with session.post(
                    f"{bases[n % len(bases)]}/v1/chat/completions", json=body, headers={"X-API-Key": key}
                ) as answer:
                    await answer.read()
                    retry_after = float(answer.headers.get("Retry-After", "1"))
                if answer.status != 429 or asyncio.get_running_loop().time() + retry_after > deadline:
                    return answer.status
                waited += 1
                await asyncio.sleep(retry_after)

        statuses = await asyncio.gather(*(one(n) for n in range(calls)), return_exceptions=True)
    admitted = sum(1 for s in statuses if s == 200)
    refused = sum(1 for s in statuses if s in (402, 429))
    others = Counter(
        str(s) if isinstance(s, int) else type(s).__name__ for s in statuses if s not in (200, 402, 429)
    )
    return admitted, refused, waited, " ".join(f"{n}x{status}" for status, n in sorted(others.items())) or "-"


def set_up(base: str, budgeted_key: bool) -> tuple[str, str, str]:
    """A fresh account with an agent on GPT-4o and a chat key: (agent slug, key, key id). With
    ``budgeted_key`` the key has the $5 budget; otherwise the org gets $5 of credits."""
    with httpx.Client(base_url=base, timeout=60) as client:
        email = f"owner-{os.urandom(4).hex()}@bench.example"
        signup = client.post("/api/v1/auth/signup", json={"email": email, "password": "bench password 1"})
        signup.raise_for_status()
        user = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        # Answers of up to 5,000 tokens: the fake upstream echoes the message (about 4,500 tokens), where a
        # real model stops at the limit the call holds for.
        agent = client.post(
            "/api/v1/agents",
            json={"name": "Budget", "model": "openai/gpt-4o", "max_tokens": 5_000},
            headers=user,
        )
        agent.raise_for_status()
        fields: dict[str, object] = {"label": "fire", "scopes": ["chat"], "rate_limit_per_minute": 100_000}
        if budgeted_key:
            fields["monthly_budget_cents"] = CAP_CENTS
        key = client.post("/api/v1/api-keys", json=fields, headers=user)
        key.raise_for_status()
        return str(agent.json()["slug"]), str(key.json()["key"]), str(key.json()["id"])


def admin_headers(base: str) -> dict[str, str]:
    """The deployment's first account, its platform admin, who grants the credits."""
    with httpx.Client(base_url=base, timeout=60) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "admin@bench.example", "password": "bench password 1"}
        )
        signup.raise_for_status()
        return {"Authorization": f"Bearer {signup.json()['access_token']}"}


def main() -> int:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rows: list[tuple[object, ...]] = []
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp, ExitStack() as running:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        running.callback(postgres.stop)
        conninfo = libpq_conninfo(url)
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        running.enter_context(
            process(
                [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(upstream_port)], clean_env()
            )
        )
        wait_for(f"{upstream}/models")
        env = clean_env(
            HUTCH_DATABASE_URL=url,
            HUTCH_DATA_DIR=str(Path(tmp) / "data"),
            HUTCH_PLANS_FILE=str(plans_file(Path(tmp))),
            HUTCH_LOG_LEVEL="WARNING",
            HUTCH_OPENAI_API_KEY=UPSTREAM_KEY,
            HUTCH_OPENAI_BASE_URL=upstream,
        )
        subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
        bases = []
        LOGS.mkdir(parents=True, exist_ok=True)
        for n in range(2):
            port = free_port()
            log = LOGS / f"hutch-{n + 1}.log"
            log.unlink(missing_ok=True)
            command = [*HUTCH, "serve", "--no-worker", "--port", str(port)]
            running.enter_context(process(command, env, log))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_for(f"{base}/readyz")
        admin = admin_headers(bases[0])  # the cases use accounts of their own

        for processes in (1, 2):
            for case in ("API key, $5 a month", "org, $5 of credits"):
                slug, key, key_id = set_up(bases[0], budgeted_key=case.startswith("API key"))
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    row = conn.execute("SELECT org_id FROM api_keys WHERE id = %s", (key_id,)).fetchone()
                    assert row is not None
                    org_id = str(row[0])
                # The org's credits are the cap in the org's case; in the key's case, plenty
                credits = 100 * CAP_CENTS if case.startswith("API key") else CAP_CENTS
                if credits:
                    granted = httpx.post(
                        f"{bases[0]}/api/v1/admin/orgs/{org_id}/grants",
                        json={"credits_cents": credits, "reason": "bench"},
                        headers=admin,
                        timeout=60,
                    )
                    granted.raise_for_status()
                admitted, refused, waited, other = asyncio.run(fire(bases[:processes], key, slug, calls))
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    cost = conn.execute(
                        "SELECT coalesce(sum(cost_micro_usd), 0), coalesce(max(cost_micro_usd), 0) "
                        "FROM messages WHERE org_id = %s",
                        (org_id,),
                    ).fetchone()
                    key_spend = conn.execute(
                        "SELECT coalesce(sum(spent_cents), 0) FROM api_key_spend WHERE api_key_id = %s",
                        (key_id,),
                    ).fetchone()
                assert cost is not None and key_spend is not None
                spent = int(key_spend[0]) if case.startswith("API key") else -(-int(cost[0]) // 10_000)
                largest = -(-int(cost[1]) // 10_000)
                rows.append(
                    (
                        case,
                        processes,
                        CAP_CENTS,
                        spent,
                        max(0, spent - CAP_CENTS),
                        largest,
                        admitted,
                        refused,
                        waited,
                        other,
                    )
                )
    print_table(
        f"Budgets under fire: {calls} calls at once (cents)",
        [
            "case",
            "API processes",
            "cap",
            "spent",
            "overspend",
            "one call",
            "admitted",
            "refused",
            "429s waited out",
            "other",
        ],
        rows,
    )
    return 0 if all(int(str(r[4])) <= int(str(r[5])) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
