"""Runtimes as supervised child processes on this machine: the default driver.

Each runtime is ``hutch runtime`` in a session of its own (it outlives a restart of the worker that started
it), on a free loopback port, with its config, workspace and log under ``HUTCH_DATA_DIR/runtimes/<agent>``.
The plan's memory becomes an address-space limit and its CPU a set of cores. It gets the platform's model
settings but nothing else of the platform's environment: no database, no secrets beyond model keys. A
runtime that dies is restarted by the health job.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import BinaryIO

from hutch.runtimes.config import write_config
from hutch.runtimes.drivers.base import Liveness, RuntimeSpec, Started

STOP_GRACE_SECONDS = 5.0
# What a runtime may take from the platform's environment: models and their keys, and the basics.
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")
_PASSED_PREFIXES = ("HUTCH_LLM_", "HUTCH_MODELS_", "HUTCH_PROVIDER_URLS_", "HUTCH_LOG_", "HUTCH_ENV")
_MODEL_KEYS = ("OPENAI", "ANTHROPIC", "GOOGLE", "MOONSHOT", "DEEPSEEK", "OPENAI_COMPATIBLE")


def runtime_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith(_PASSED_PREFIXES)}
    for provider in _MODEL_KEYS:
        for suffix in ("_API_KEY", "_BASE_URL"):
            name = f"HUTCH_{provider}{suffix}"
            if name in os.environ:
                env[name] = os.environ[name]
    env["HUTCH_DATA_DIR"] = str(home / "data")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parse(handle: str) -> tuple[int, int]:
    pid, _, port = handle.partition(":")
    return int(pid), int(port)


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (Z for a zombie), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class ProcessDriver:
    name = "process"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._children: dict[int, asyncio.subprocess.Process] = {}

    async def create(self, spec: RuntimeSpec, port: int | None = None) -> Started:
        write_config(spec.home / "agent.json", spec.config)
        (spec.home / "workspace").mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
        log = _open_log(spec.home / "runtime.log")  # handed to the child, closed here once it has it
        try:
            child = await asyncio.create_subprocess_exec(
                self.python, "-m", "hutch.cli", "runtime",
                "--agent-config", str(spec.home / "agent.json"),
                "--workspace", str(spec.home / "workspace"),
                "--port", str(port),
                env=runtime_environment(spec.home),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_limits(spec.cpu, spec.memory_mb),
            )  # fmt: skip
        finally:
            log.close()
        self._children[child.pid] = child  # reaped when it exits, so it never lingers as a zombie
        return Started(f"{child.pid}:{port}", f"http://127.0.0.1:{port}")

    async def status(self, handle: str) -> Liveness:
        pid, _ = _parse(handle)
        child = self._children.get(pid)
        if child is not None and child.returncode is not None:
            return "dead"
        state = _state(pid)
        return "running" if state is not None and state not in ("Z", "X") else "dead"

    async def stop(self, handle: str) -> None:
        pid, _ = _parse(handle)
        if _state(pid) is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_SECONDS
        while await self.status(handle) == "running" and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # another process: nothing to wait on but its state
        if await self.status(handle) == "running":
            os.killpg(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            await child.wait()

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started:
        _, port = _parse(handle)
        await self.stop(handle)
        return await self.create(spec, port=port)

    async def destroy(self, home: Path, handle: str | None) -> None:
        if handle:
            await self.stop(handle)
        shutil.rmtree(home, ignore_errors=True)

    async def logs(self, home: Path, lines: int = 200) -> str:
        path = home / "runtime.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _open_log(path: Path) -> BinaryIO:
    return path.open("ab")


def _limits(cpu: float | None, memory_mb: int | None):  # type: ignore[no-untyped-def]
    """Run in the child before it starts: the plan's memory and cores."""

    def apply() -> None:
        if memory_mb:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if cpu:
            cores = sorted(os.sched_getaffinity(0))[: max(1, math.ceil(cpu))]
            os.sched_setaffinity(0, cores)

    return apply
