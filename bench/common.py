"""Shared pieces of the benchmarks: processes, ports, a bounded load generator and tables."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HUTCH = [sys.executable, "-m", "hutch.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unlimited_plans(directory: Path) -> Path:
    """A plans file with one free plan and no limits: benches send thousands of messages and start many
    runtimes."""
    path = directory / "plans.toml"
    path.write_text('[[plans]]\nid = "free"\nname = "Bench"\nprice_cents = 0\n')
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(extra)
    return env


def wait_for(url: str, timeout: float = 120) -> float:
    """Poll ``url`` every 50 ms until it answers 200; return the seconds it took. One client serves every
    poll: making one costs tens of milliseconds of CPU (its TLS context), taken from the process waited for.
    """
    started = time.perf_counter()
    deadline = started + timeout
    with httpx.Client(timeout=1) as client:
        while time.perf_counter() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


@contextmanager
def process(
    args: Sequence[str], env: dict[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the bench, stopped at the end; its output goes to ``log`` (or nowhere)."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)  # results/ is not in a fresh clone
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        list(args),
        env=env,
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


Body = dict[str, Any] | Callable[[], dict[str, Any]]


async def _load(
    url: str, total: int, concurrency: int, headers: dict[str, str], body: Body | None
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    if body is None:
                        response = await client.get(url)
                    else:
                        response = await client.post(url, json=body() if callable(body) else body)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(total, errors, seconds, latencies)


async def post_each(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> LoadResult:
    """POST each (body, headers) once over ``concurrency`` connections; any answer but 200 is an error."""
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            for body, headers in queue:
                t0 = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{url}: {errors} of {len(requests)} requests failed")
    return LoadResult(len(requests), errors, seconds, latencies)


def load(
    url: str,
    *,
    total: int = 4000,
    warmup: int = 300,
    concurrency: int = 16,
    headers: dict[str, str] | None = None,
    body: Body | None = None,
) -> LoadResult:
    """Send ``total`` requests with ``concurrency`` connections (after a warm-up) and measure each: GETs,
    or POSTs of ``body`` as JSON when it is given (a callable makes each request's body)."""
    asyncio.run(_load(url, warmup, concurrency, headers or {}, body))
    return asyncio.run(_load(url, total, concurrency, headers or {}, body))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header]] + [
        [f"{c:.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))
