"""Runtimes as supervised processes on this machine: the default driver.

Each runtime is a process of its own session (it outlives a restart of the worker that started it), forked
by the runtime launcher (:mod:`hutch.runtimes.launcher`, started on first use and again if it dies), on a
free loopback port, with its config, workspace and log under ``HUTCH_DATA_DIR/runtimes/<agent>``. The
plan's memory becomes an address-space limit and its CPU a set of cores. Runtimes get the platform's model
settings but nothing else of its environment: no database, no secrets beyond model keys. A runtime that
dies is restarted by the health job.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any, BinaryIO

from hutch.runtimes.config import write_config
from hutch.runtimes.drivers.base import Liveness, RuntimeSpec, RuntimeUsage, Started
from hutch.runtimes.drivers.proc_usage import process_usage
from hutch.runtimes.launcher import socket_name

STOP_GRACE_SECONDS = 5.0
LAUNCHER_START_SECONDS = 30.0
# What a runtime may take from the platform's environment: models and their keys, the browser (its
# executable, pool size and timeouts: the same machine), and the basics.
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")
_PASSED_PREFIXES = (
    "HUTCH_LLM_",
    "HUTCH_MODELS_",
    "HUTCH_PROVIDER_URLS_",
    "HUTCH_LOG_",
    "HUTCH_ENV",
    "HUTCH_BROWSER_",
)
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

    async def create(self, spec: RuntimeSpec, port: int | None = None) -> Started:
        write_config(spec.home / "agent.json", spec.config)
        (spec.home / "workspace").mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
        request = {
            "home": str(spec.home),
            "port": port,
            "cpu": spec.cpu,
            "memory_mb": spec.memory_mb,
        }
        pid = await self._launch(spec.home.parent, request)
        return Started(f"{pid}:{port}", f"http://127.0.0.1:{port}")

    async def _launch(self, runtimes_dir: Path, request: dict[str, Any]) -> int:
        """Ask the launcher for a runtime; start the launcher first when none answers."""
        for attempt in range(2):
            try:
                reader, writer = await _connect(socket_name(runtimes_dir))
            except (ConnectionRefusedError, FileNotFoundError):
                if attempt:
                    raise
                await self._start_launcher(runtimes_dir)
                continue
            try:
                writer.write(json.dumps(request).encode() + b"\n")
                await writer.drain()
                answer = json.loads(await reader.readline())
            finally:
                writer.close()
            return int(answer["pid"])
        raise RuntimeError("the runtime launcher did not start")

    async def _start_launcher(self, runtimes_dir: Path) -> None:
        log = _open_log(runtimes_dir / "launcher.log")
        try:
            await asyncio.create_subprocess_exec(
                self.python, "-m", "hutch.runtimes.launcher", "--runtimes-dir", str(runtimes_dir),
                env=runtime_environment(runtimes_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LAUNCHER_START_SECONDS
        while loop.time() < deadline:
            try:
                _, writer = await _connect(socket_name(runtimes_dir))
            except (ConnectionRefusedError, FileNotFoundError):
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RuntimeError(f"the runtime launcher did not start; see {runtimes_dir / 'launcher.log'}")

    def stop_launcher(self, runtimes_dir: Path) -> None:
        """End the launcher (runtimes it started keep running); the next runtime starts a new one."""
        pid_file = runtimes_dir / "launcher.pid"
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            return

    async def status(self, handle: str) -> Liveness:
        pid, _ = _parse(handle)
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

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started:
        _, port = _parse(handle)
        await self.stop(handle)
        return await self.create(spec, port=port)

    async def destroy(self, home: Path, handle: str | None) -> None:
        if handle:
            await self.stop(handle)
        shutil.rmtree(home, ignore_errors=True)

    async def usage(self, handle: str) -> RuntimeUsage | None:
        """CPU, memory and uptime of the runtime's process and its children (its browser), from /proc."""
        pid, _ = _parse(handle)
        return await process_usage(pid)

    async def logs(self, home: Path, lines: int = 200) -> str:
        path = home / "runtime.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def _connect(name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to an abstract Unix socket (uvloop's own connect refuses those names; a connected socket
    handed over works with every loop). A local connect does not block."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(name)
    except OSError:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")
