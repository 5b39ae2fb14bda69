"""What a dedicated runtime uses, as its status shows it: a process tree read from /proc, Docker's stats."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

from hutch.runtimes.drivers.docker import container_usage
from hutch.runtimes.drivers.proc_usage import process_usage


async def test_a_busy_process_shows_its_cpu_memory_and_uptime() -> None:
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(10_000))

    busy = threading.Thread(target=burn)
    busy.start()
    try:
        usage = await process_usage(os.getpid(), window=0.3)
    finally:
        stop.set()
        busy.join()
    assert usage is not None
    assert usage.cpu_percent is not None and usage.cpu_percent > 20
    assert usage.memory_mb is not None and usage.memory_mb > 20
    assert usage.uptime_seconds is not None and 0 < usage.uptime_seconds < time.monotonic() + 1


async def test_a_process_that_is_gone_has_no_usage() -> None:
    assert await process_usage(2**22 + 12345) is None


def test_docker_stats_read_as_docker_stats_shows_them() -> None:
    started = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    stats = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_500_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 18_000_000_000},
        "memory_stats": {"usage": 300 * 1024 * 1024, "stats": {"inactive_file": 44 * 1024 * 1024}},
    }
    usage = container_usage(stats, started)
    assert usage.cpu_percent == 50.0  # half a second of CPU over a second of two cores' time
    assert usage.memory_mb == 256.0
    assert usage.uptime_seconds is not None and 299 < usage.uptime_seconds < 310
    assert container_usage({}, "0001-01-01T00:00:00Z") == type(usage)(0.0, None, None)
