"""What Hutch's `/v1/chat/completions` adds over calling the model directly, next to the LiteLLM proxy.

Three targets share one fake OpenAI-compatible upstream (`fake_upstream.py`, zero think time, echoing
the last user message): the upstream called directly (the reference), one `hutch serve` whose agent uses
`openai/gpt-4o-mini` on that upstream, and the LiteLLM proxy (no database) routing a model to the same
upstream. Every Hutch request names an end user, so Hutch also stores the exchange, loads that user's
history and memories, and records tokens and cost; LiteLLM only forwards. Hutch runs as in production: the
API process (`hutch serve --no-worker`) and a job worker process (`hutch worker`).

Latency is measured over one connection (the cost of one request, no queueing), throughput over 16
connections; "added" is the p50/p99 over the direct call in the same run. All three run side by side and
are measured in alternating rounds, so a slower minute of the machine weighs on each of them alike. Target:
Hutch adds no more latency than LiteLLM and serves at least as many requests per second.

LiteLLM is installed on first use into `bench/.venv-litellm` (`pip install 'litellm[proxy]'`), never into
Hutch's environment; when that fails, its rows are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common import (
    HUTCH,
    ROOT,
    Body,
    clean_env,
    free_port,
    load,
    print_table,
    process,
    unlimited_plans,
    wait_for,
)

THROUGHPUT_REQUESTS = 2000
LATENCY_REQUESTS = 1500  # a p99 of fewer is the few slowest requests of one unlucky moment
STREAMED_CALLS = 200
ROUNDS = 5  # each target's requests are split into rounds that alternate with the other targets'
CONCURRENCY = 16
END_USERS = 50  # Hutch keeps a conversation per end user; spread the load over a few of them
UPSTREAM_KEY = "sk-bench-upstream"
UPSTREAM_MODEL = "gpt-4o-mini"
LITELLM_MASTER_KEY = "sk-litellm-bench-master-key-0123456789"  # LiteLLM checks it like Hutch checks keys
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]


def litellm_binary() -> tuple[Path | None, str]:
    """The `litellm` command of the bench-only environment, installing it on first use."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists():
        return binary, ""
    print("Installing litellm[proxy] into bench/.venv-litellm (first run only)…", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"],
            check=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return None, f"installing litellm[proxy] failed: {error}"
    return binary, ""


@contextmanager
def litellm_proxy(upstream: str, workdir: Path) -> Iterator[tuple[str | None, str]]:
    """The base URL of a LiteLLM proxy forwarding model `bench` to the upstream (or None and why not)."""
    binary, problem = litellm_binary()
    if binary is None:
        yield None, problem
        return
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
    )
    port = free_port()
    env = clean_env(LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False")
    args = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with process([*args, "--num_workers", "1"], env):
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health/liveliness", timeout=180)
        yield base, ""


def set_up_hutch(base: str) -> tuple[str, str]:
    """Sign up, create an agent on the upstream's model and a chat key; return (agent slug, key)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 1"}
        )
        signup.raise_for_status()
        user = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        agent = client.post(
            "/api/v1/agents",
            json={"name": "Bench", "model": f"openai/{UPSTREAM_MODEL}"},
            headers=user,
        )
        agent.raise_for_status()
        key = client.post(
            "/api/v1/api-keys",
            json={"label": "bench", "scopes": ["chat"], "rate_limit_per_minute": 100_000},
            headers=user,
        )
        key.raise_for_status()
        return str(agent.json()["slug"]), str(key.json()["key"])


@dataclass
class Target:
    """One endpoint under test and what its rounds measured."""

    name: str
    url: str
    headers: dict[str, str]
    body: Body
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_content_ms: list[float] = field(default_factory=list)
    done_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def warm_up(self) -> None:
        load(self.url, total=300, concurrency=CONCURRENCY, headers=self.headers, body=self.body)
        self.stream(20)
        self.first_content_ms.clear()
        self.done_ms.clear()

    def measure_round(self) -> None:
        throughput = load(
            self.url,
            total=THROUGHPUT_REQUESTS // ROUNDS,
            concurrency=CONCURRENCY,
            headers=self.headers,
            body=self.body,
        )
        latency = load(
            self.url,
            total=LATENCY_REQUESTS // ROUNDS,
            warmup=10,
            concurrency=1,
            headers=self.headers,
            body=self.body,
        )
        for result in (throughput, latency):
            if result.errors:
                raise RuntimeError(f"{self.url}: {result.errors} of {result.requests} requests failed")
        self.requests += throughput.requests
        self.seconds += throughput.seconds
        self.latencies_ms += latency.latencies_ms
        self.stream(STREAMED_CALLS // ROUNDS)

    def stream(self, calls: int) -> None:
        """Time to the first chunk with content, and to `[DONE]`, of streamed calls one at a time."""
        with httpx.Client(timeout=30, headers=self.headers) as client:
            for _ in range(calls):
                body = self.body() if callable(self.body) else self.body
                t0 = time.perf_counter()
                first_at = None
                with client.stream("POST", self.url, json={**body, "stream": True}) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if first_at is None and '"content":"' in line.replace(" ", ""):
                            first_at = time.perf_counter()
                        if line.strip() == "data: [DONE]":
                            break
                self.first_content_ms.append(((first_at or time.perf_counter()) - t0) * 1000)
                self.done_ms.append((time.perf_counter() - t0) * 1000)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    skipped = ""
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp, ExitStack() as running:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        running.enter_context(
            process(
                [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(upstream_port)], clean_env()
            )
        )
        wait_for(f"{upstream}/models")
        direct = {"model": UPSTREAM_MODEL, "messages": MESSAGES}
        targets = [
            Target(
                "upstream, direct",
                f"{upstream}/chat/completions",
                {"Authorization": f"Bearer {UPSTREAM_KEY}"},
                direct,
            )
        ]

        plans = unlimited_plans(Path(tmp))
        env = clean_env(
            HUTCH_PLANS_FILE=str(plans),
            HUTCH_DATA_DIR=str(Path(tmp) / "data"),
            HUTCH_LOG_LEVEL="WARNING",
            HUTCH_OPENAI_API_KEY=UPSTREAM_KEY,
            HUTCH_OPENAI_BASE_URL=upstream,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # As deployed in production: the API process serves requests, a worker process runs the jobs.
        running.enter_context(process([*HUTCH, "serve", "--port", str(port), "--no-worker"], env))
        wait_for(f"{base}/readyz")
        running.enter_context(process([*HUTCH, "worker"], env))
        slug, key = set_up_hutch(base)
        users = itertools.cycle(f"end-user-{n}" for n in range(END_USERS))

        def hutch_body() -> dict[str, Any]:
            return {"model": slug, "messages": MESSAGES, "user": next(users)}

        targets.append(
            Target(
                "Hutch (stores the exchange)",
                f"{base}/v1/chat/completions",
                {"Authorization": f"Bearer {key}"},
                hutch_body,
            )
        )

        litellm, skipped = running.enter_context(litellm_proxy(upstream, Path(tmp)))
        if litellm is not None:
            targets.append(
                Target(
                    "LiteLLM proxy",
                    f"{litellm}/v1/chat/completions",
                    {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
                    {"model": "bench", "messages": MESSAGES},
                )
            )

        for target in targets:
            target.warm_up()
        for round_number in range(ROUNDS):
            print(f"round {round_number + 1} of {ROUNDS}…", flush=True)
            shift = round_number % len(targets)  # each target goes first in turn
            for target in targets[shift:] + targets[:shift]:
                target.measure_round()

    reference = targets[0]
    ref_p50, ref_p99 = percentile(reference.latencies_ms, 50), percentile(reference.latencies_ms, 99)
    print_table(
        f"POST /v1/chat/completions, zero think time: req/s over {CONCURRENCY} connections "
        f"({THROUGHPUT_REQUESTS} requests), latency over 1 connection ({LATENCY_REQUESTS} requests), "
        f"in {ROUNDS} alternating rounds",
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
    print_table(
        f"Streaming (stream: true), one call at a time ({STREAMED_CALLS} calls)",
        ["target", "first content p50 ms", "[DONE] p50 ms", "[DONE] p99 ms"],
        [
            [t.name, percentile(t.first_content_ms, 50), percentile(t.done_ms, 50), percentile(t.done_ms, 99)]
            for t in targets
        ],
    )
    if skipped:
        print(f"  (LiteLLM rows skipped: {skipped})")


if __name__ == "__main__":
    main()
