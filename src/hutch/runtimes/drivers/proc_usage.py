"""What a process and its children use, read from /proc (Linux): the process driver's runtime status.

CPU is measured over a short window (two readings of the processes' CPU time), so it is what the runtime
uses now, not an average since it started; memory is the resident size of the process and its children
(the runtime's browser among them); uptime is counted from the process's start.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from hutch.runtimes.drivers.base import RuntimeUsage

PROC = Path("/proc")
WINDOW_SECONDS = 0.25
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class _Reading:
    ticks: int  # CPU time of every process of the tree, in clock ticks
    rss_bytes: int
    started_ticks: int  # the root process's start, in ticks since boot


def _stat_fields(pid: int) -> list[str] | None:
    try:
        # Fields after the command name (which may hold spaces and parentheses): state is the first.
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _tree(root: int) -> list[int]:
    """``root`` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _read(root: int) -> _Reading | None:
    root_fields = _stat_fields(root)
    if root_fields is None:
        return None
    ticks = rss = 0
    for pid in _tree(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        rss += int(fields[21]) * PAGE_BYTES  # rss, in pages (field 24)
    return _Reading(ticks, rss, int(root_fields[19]))  # starttime (field 22)


def _uptime_of_system() -> float:
    return float((PROC / "uptime").read_text().split()[0])


async def process_usage(pid: int, window: float = WINDOW_SECONDS) -> RuntimeUsage | None:
    """The process tree's CPU now, its memory and the root's uptime; None when the process is gone."""
    first = await asyncio.to_thread(_read, pid)
    if first is None:
        return None
    await asyncio.sleep(window)
    second = await asyncio.to_thread(_read, pid)
    if second is None:
        return None
    cpu = max(second.ticks - first.ticks, 0) / TICKS / window * 100
    uptime = _uptime_of_system() - second.started_ticks / TICKS
    return RuntimeUsage(round(cpu, 1), round(second.rss_bytes / 1024 / 1024, 1), round(max(uptime, 0.0), 1))
