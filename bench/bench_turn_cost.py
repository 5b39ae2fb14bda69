"""What one Telegram turn costs in CPU, per process, on `hutch serve` as `make run` starts it.

A burst's latency on a small machine is set by how much CPU each turn takes, in every process it touches:
the API acknowledging the webhook, the job workers running the turn, and PostgreSQL. This runs a burst of
Telegram chats (one message each, `--chats`, the fake model thinking `--think` seconds, updates posted over
64 connections) and reads each process's CPU time from the operating system before and after it, so the
figures hold on a busy machine too, where wall-clock rates do not. Everything else (the fakes, the load
generator) is left out of the sums.

    ../.venv/bin/python bench_turn_cost.py [--chats 1000] [--think 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psutil

from bench_turns import (
    TOKEN,
    FakeTelegramServer,
    Replies,
    Sender,
    connect_bot,
    fake_upstream,
    hutch_serve,
    post_over,
    serving,
    telegram_reply,
    telegram_requests,
    warm_up_telegram,
)
from common import print_table


def ours(base: str, data_dir: str) -> list[tuple[str, psutil.Process]]:
    """(role, process) of the Hutch under test: `hutch serve` on ``base``'s port and its workers, and the
    embedded PostgreSQL of ``data_dir`` with its backends (other Hutch processes on the machine are not
    ours)."""
    port = base.rsplit(":", 1)[1]
    found: list[tuple[str, psutil.Process]] = []
    for proc in psutil.process_iter():
        try:
            line = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "serve" in line and f"--port {port}" in line:
            found.append(("API", proc))
            found += [("job workers", child) for child in proc.children(recursive=True)]
        elif "postgres" in line and data_dir in line:
            found.append(("PostgreSQL", proc))
            found += [("PostgreSQL", child) for child in proc.children(recursive=True)]
    return found


def cpu_seconds(processes: list[tuple[str, psutil.Process]]) -> dict[int, tuple[str, float]]:
    """pid → (role, CPU seconds, user + system, used so far)."""
    used = {}
    for name, proc in processes:
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        used[proc.pid] = (name, times.user + times.system)
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--think", type=float, default=0.5)
    parser.add_argument("--cap", type=float, default=180.0)
    args = parser.parse_args()
    telegram = FakeTelegramServer()
    with (
        tempfile.TemporaryDirectory(prefix="hutch-turn-cost-") as tmp,
        serving(telegram),
        fake_upstream(args.think, "cost") as upstream,
        hutch_serve(Path(tmp), "cost", upstream, HUTCH_TELEGRAM_API_BASE=telegram.base_url) as base,
    ):
        telegram.add_bot(TOKEN, "turn_cost_bot")
        url, headers = connect_bot(base, telegram)
        warm_up_telegram(url, headers, telegram, args.cap)
        senders = [Sender(id=8_000_000 + n, username=f"cost{n}") for n in range(args.chats)]
        requests = telegram_requests(senders, headers)
        replies = Replies(telegram.calls, telegram_reply)
        time.sleep(2)  # the warm-up's jobs settle
        processes = ours(base, tmp)
        before = cpu_seconds(processes)
        started = time.time()
        asyncio.run(post_over(url, requests, 64))
        replies.wait({str(s.id) for s in senders}, started + args.cap)
        wall = (replies.last_at or time.time()) - started
        # Processes that started since (a backend PostgreSQL opened for the burst) count from zero.
        after = cpu_seconds(ours(base, tmp))
    answered = len(replies.first) or 1
    spent: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    rows: list[list[object]] = [
        [name, round(spent[name], 2), round(spent[name] * 1000 / answered, 1)]
        for name in ("API", "job workers", "PostgreSQL")
        if name in spent
    ]
    total = sum(spent.values())
    rows.append(["all of Hutch", round(total, 2), round(total * 1000 / answered, 1)])
    print_table(
        f"CPU per Telegram turn: {answered}/{args.chats} chats answered in {wall:.1f} s "
        f"({answered / wall:.0f} turns/s), the model thinking {args.think} s",
        ["process", "CPU s", "CPU ms per turn"],
        rows,
    )


if __name__ == "__main__":
    main()
