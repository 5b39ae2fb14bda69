"""What Hutch's `/v1/responses` and `/v1/messages` add over calling the model directly, next to what
`/v1/chat/completions` adds, measured side by side in the same run.

Two fake OpenAI-compatible upstreams (`fake_upstream.py`, echoing the last user message) run in their own
processes: one answers at once, the other thinks 250 ms first, as a model does. One `hutch serve` (API
process, plus a `hutch worker`) has an agent on each (`openai/gpt-4o-mini` → the instant upstream,
`deepseek/deepseek-chat` → the thinking one). For each upstream the targets are:

- the upstream called directly (the reference);
- Hutch `/v1/chat/completions` with `user` (the exchange stored in that end user's conversation);
- Hutch `/v1/responses` with `user` and `store` (the default: the exchange stored, and the response kept
  for `previous_response_id`), and with `store: false` (metered only);
- Hutch `/v1/messages` with `metadata.user_id` (stored like chat completions).

Throughput is over many connections (16 on the instant upstream; 128 on the thinking one, where
requests mostly wait), latency over one connection; "added" is the p50/p99 over the direct call. Targets
alternate in rounds so a slower minute of the machine weighs on each alike. The load generator is aiohttp
(httpx's pool tops out near the rates measured here).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from common import HUTCH, clean_env, free_port, print_table, process, unlimited_plans, wait_for

UPSTREAM_KEY = "sk-bench-upstream"
THINK_SECONDS = 0.25
ROUNDS = 3
END_USERS = 50
QUESTION = "Say hello to the benchmark."


@dataclass(frozen=True)
class Scenario:
    name: str
    think: float
    concurrency: int
    throughput_requests: int
    latency_requests: int


SCENARIOS = [
    Scenario("instant upstream", 0.0, 16, 1500, 450),
    Scenario(f"upstream thinking {int(THINK_SECONDS * 1000)} ms", THINK_SECONDS, 128, 1500, 60),
]


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: Callable[[], dict[str, Any]]
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def aio_load(target: Target, total: int, concurrency: int) -> tuple[float, list[float]]:
    """POST ``total`` requests over ``concurrency`` connections; (seconds, latencies). Any answer but 200
    fails the run."""
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=target.headers) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.post(target.url, json=target.body()) as response:
                    text = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{target.name}: {response.status} {text[:300]!r}")
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def measure(target: Target, scenario: Scenario) -> None:
    seconds, _ = asyncio.run(aio_load(target, scenario.throughput_requests // ROUNDS, scenario.concurrency))
    target.requests += scenario.throughput_requests // ROUNDS
    target.seconds += seconds
    _, latencies = asyncio.run(aio_load(target, scenario.latency_requests // ROUNDS, 1))
    target.latencies_ms += latencies


def set_up_hutch(base: str) -> tuple[str, str, str]:
    """Sign up, create an agent on each upstream and a chat key; (instant agent, thinking agent, key)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 1"}
        )
        signup.raise_for_status()
        user = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        slugs = []
        for name, model in (("Instant", "openai/gpt-4o-mini"), ("Thinking", "deepseek/deepseek-chat")):
            agent = client.post("/api/v1/agents", json={"name": name, "model": model}, headers=user)
            agent.raise_for_status()
            slugs.append(str(agent.json()["slug"]))
        key = client.post(
            "/api/v1/api-keys",
            json={"label": "bench", "scopes": ["chat"], "rate_limit_per_minute": 100_000},
            headers=user,
        )
        key.raise_for_status()
        return slugs[0], slugs[1], str(key.json()["key"])


def targets_for(base: str, upstream: str, slug: str, key: str) -> list[Target]:
    users = itertools.cycle(f"end-user-{n}" for n in range(END_USERS))
    hutch = {"Authorization": f"Bearer {key}"}
    message = [{"role": "user", "content": QUESTION}]
    return [
        Target(
            "upstream, direct",
            f"{upstream}/chat/completions",
            {"Authorization": f"Bearer {UPSTREAM_KEY}"},
            lambda: {"model": "gpt-4o-mini", "messages": message},
        ),
        Target(
            "Hutch /v1/chat/completions (user)",
            f"{base}/v1/chat/completions",
            hutch,
            lambda: {"model": slug, "messages": message, "user": next(users)},
        ),
        Target(
            "Hutch /v1/responses (user, store)",
            f"{base}/v1/responses",
            hutch,
            lambda: {"model": slug, "input": QUESTION, "user": next(users)},
        ),
        Target(
            "Hutch /v1/responses (store: false)",
            f"{base}/v1/responses",
            hutch,
            lambda: {"model": slug, "input": QUESTION, "store": False},
        ),
        Target(
            "Hutch /v1/messages (metadata.user_id)",
            f"{base}/v1/messages",
            {"x-api-key": key, "anthropic-version": "2023-06-01"},
            lambda: {
                "model": slug,
                "max_tokens": 256,
                "messages": message,
                "metadata": {"user_id": next(users)},
            },
        ),
    ]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp, ExitStack() as running:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        upstreams = []
        for scenario in SCENARIOS:
            port = free_port()
            script = str(Path(__file__).resolve().parent / "fake_upstream.py")
            args = [sys.executable, script, str(port), "--think", str(scenario.think)]
            running.enter_context(process(args, clean_env()))
            upstreams.append(f"http://127.0.0.1:{port}/v1")
        for upstream in upstreams:
            wait_for(f"{upstream}/models")
        env = clean_env(
            HUTCH_PLANS_FILE=str(unlimited_plans(Path(tmp))),
            HUTCH_DATA_DIR=str(Path(tmp) / "data"),
            HUTCH_LOG_LEVEL="WARNING",
            HUTCH_OPENAI_API_KEY=UPSTREAM_KEY,
            HUTCH_OPENAI_BASE_URL=upstreams[0],
            HUTCH_DEEPSEEK_API_KEY=UPSTREAM_KEY,
            HUTCH_DEEPSEEK_BASE_URL=upstreams[1],
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        running.enter_context(process([*HUTCH, "serve", "--port", str(port), "--no-worker"], env))
        wait_for(f"{base}/readyz")
        running.enter_context(process([*HUTCH, "worker"], env))
        instant, thinking, key = set_up_hutch(base)

        results = []
        for scenario, upstream, slug in zip(SCENARIOS, upstreams, (instant, thinking), strict=True):
            targets = targets_for(base, upstream, slug, key)
            for target in targets:  # warm up: connections, caches, the first conversations
                asyncio.run(aio_load(target, 200, scenario.concurrency))
            for round_number in range(ROUNDS):
                print(f"{scenario.name}: round {round_number + 1} of {ROUNDS}…", flush=True)
                shift = round_number % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    measure(target, scenario)
            results.append((scenario, targets))

    for scenario, targets in results:
        reference = targets[0]
        ref_p50, ref_p99 = percentile(reference.latencies_ms, 50), percentile(reference.latencies_ms, 99)
        print_table(
            f"{scenario.name}: req/s over {scenario.concurrency} connections ({scenario.throughput_requests} "
            f"requests), latency over 1 connection ({scenario.latency_requests} requests), {ROUNDS} rounds",
            ["target", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"],
            [
                [
                    t.name,
                    t.rps,
                    percentile(t.latencies_ms, 50),
                    percentile(t.latencies_ms, 99),
                    percentile(t.latencies_ms, 50) - ref_p50,
                    percentile(t.latencies_ms, 99) - ref_p99,
                ]
                for t in targets
            ],
        )


if __name__ == "__main__":
    main()
