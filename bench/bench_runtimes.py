"""Dedicated runtimes with the process driver: time from request to ready, and memory per idle runtime.

One `hutch serve` (with its job worker) on the embedded PostgreSQL. Twenty agents ask for a
runtime one after the other; each is timed from the POST until GET says "ready" (the job picked up, the
process forked by the launcher, its /healthz answering). Then the idle runtimes' memory is read from
/proc: resident (RSS) and proportional (PSS, shared pages divided among the runtimes sharing them).
Target: p95 under 2 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx

from common import HUTCH, clean_env, free_port, print_table, process, unlimited_plans, wait_for
from hutch.db.embedded import EmbeddedPostgres
from hutch.runtimes.drivers.process import ProcessDriver

RUNTIMES = 20


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def runtime_memory_mb(runtimes_dir: Path) -> list[tuple[float, float]]:
    """(RSS, PSS) of every runtime: forks of the launcher, named like it (the launcher itself left out).
    PSS shares each page among the processes using it, so it is what one more runtime costs."""
    launcher = (
        (runtimes_dir / "launcher.pid").read_text().strip()
        if (runtimes_dir / "launcher.pid").exists()
        else ""
    )
    sizes = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"hutch.runtimes.launcher" not in cmdline or pid == launcher:
                continue
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {
            line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.split()[1].isdigit()
        }
        sizes.append((fields.get("Rss", 0) / 1024, fields.get("Pss", 0) / 1024))
    return sizes


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            plans = unlimited_plans(Path(tmp))
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_PLANS_FILE=str(plans),
                HUTCH_RUNTIME_LOCAL_CAPACITY=str(RUNTIMES + 5),
            )
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with (
                process([*HUTCH, "serve", "--port", str(port)], env),
                httpx.Client(base_url=base, timeout=30) as client,
            ):
                wait_for(f"{base}/readyz")
                signup = client.post(
                    "/api/v1/auth/signup", json={"email": "rt@example.com", "password": "bench password 1"}
                )
                auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
                agents = [
                    client.post(
                        "/api/v1/agents", json={"name": f"Runtime {n}", "model": "demo/echo"}, headers=auth
                    ).json()["id"]
                    for n in range(RUNTIMES)
                ]
                times = []
                for agent_id in agents:
                    started = time.perf_counter()
                    client.post(f"/api/v1/agents/{agent_id}/runtime", headers=auth).raise_for_status()
                    while True:
                        state = client.get(f"/api/v1/agents/{agent_id}/runtime", headers=auth).json()
                        if state["status"] == "ready":
                            break
                        if state["status"] == "error" or time.perf_counter() - started > 60:
                            raise RuntimeError(f"runtime of {agent_id} not ready: {state}")
                        time.sleep(0.01)
                    times.append(time.perf_counter() - started)
                time.sleep(2)  # idle
                runtimes_dir = Path(tmp) / "data" / "runtimes"
                memory = runtime_memory_mb(runtimes_dir)
                for agent_id in agents:
                    client.delete(f"/api/v1/agents/{agent_id}/runtime", headers=auth)
                deadline = time.perf_counter() + 30
                while runtime_memory_mb(runtimes_dir) and time.perf_counter() < deadline:
                    time.sleep(0.2)
                ProcessDriver().stop_launcher(runtimes_dir)
        finally:
            postgres.stop()

    print_table(
        f"Dedicated runtime, process driver: request to ready ({RUNTIMES} runtimes, one after another)",
        ["p50 s", "p95 s", "max s", "idle RSS MB (mean)", "idle PSS MB (mean)", "runtimes measured"],
        [
            [
                percentile(times, 50),
                percentile(times, 95),
                max(times),
                sum(rss for rss, _ in memory) / max(1, len(memory)),
                sum(pss for _, pss in memory) / max(1, len(memory)),
                len(memory),
            ]
        ],
    )
    print("  target: p95 under 2 s")


if __name__ == "__main__":
    main()
