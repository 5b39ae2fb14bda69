"""How many agents' browsers one machine holds: N sessions (one browser context each, one Chromium, the
worker's pool) working at once, each opening a page and clicking its link in turn through the toolset.

For each N: the median and 99th percentile time of one action, the actions done per second in all, and
the memory the browsers add (Chromium's processes and the Hutch process's growth, over what it and the
embedded PostgreSQL used before; proportional set size, so pages shared between processes count once).
Run it on the machine you size: the result is the point where p99 grows past what a person watching the
agent accepts (a few seconds). `--sessions 1,2,4,8,16`, `--actions N`
per session (default 10; `--quick` or `BENCH_QUICK=1`: sessions 1,4,8 and 4 actions).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from browser_setup import bench_setup, percentile
from common import print_table


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def memory_mb() -> float:
    """Proportional set size of this process and every process under it (Chromium's), in MB."""
    tree, total, todo = _children(), 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def run(sessions: int, actions: int) -> list[object]:
    async with bench_setup(pool_size=sessions) as bench:
        baseline = memory_mb()  # this process and PostgreSQL, before Chromium starts
        browsers = [bench.browser(f"s{i}") for i in range(sessions)]
        # Open every session first (their contexts), so the timed part is the agents working.
        await asyncio.gather(*(b.act("open", None, url=f"{bench.site}/p/0") for b in browsers))
        latencies: list[float] = []
        peak = memory_mb()

        async def work(agent_index: int) -> None:
            agent = browsers[agent_index]
            for n in range(actions):
                started = time.perf_counter()
                if n % 2 == 0:
                    await agent.act("open", None, url=f"{bench.site}/p/{n}")
                else:
                    await agent.act("click", None, element=3)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        sampler_stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not sampler_stop.is_set():
                peak = max(peak, memory_mb())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(work(i) for i in range(sessions)))
        elapsed = time.perf_counter() - started
        sampler_stop.set()
        await sampler
        return [
            sessions,
            statistics.median(latencies),
            percentile(latencies, 99),
            len(latencies) / elapsed,
            peak - baseline,
            (peak - baseline) / sessions,
        ]


async def main(sessions: list[int], actions: int) -> None:
    rows = [await run(n, actions) for n in sessions]
    print_table(
        f"Browser sessions working at once on {os.cpu_count()} cores, {actions} actions each "
        "(open and click in turn, through the toolset)",
        ["sessions", "p50 ms", "p99 ms", "actions/s", "browser memory MB", "MB/session"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,2,4,8,16")
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    if arguments.quick or os.environ.get("BENCH_QUICK") == "1":
        asyncio.run(main([1, 4, 8], 4))
    else:
        asyncio.run(main([int(n) for n in arguments.sessions.split(",")], arguments.actions))
