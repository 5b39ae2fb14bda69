"""The runtime launcher: one process that has loaded the runtime's code and forks a runtime on request.

Starting a runtime from scratch spends most of its time importing its libraries (the model SDKs, the web
framework). The launcher imports them once; each runtime is a fork of it, ready in a fraction of that, and
shares the loaded code's memory pages with its siblings until it writes to them. The launcher listens on
an abstract Unix socket (no file), named after the runtimes' directory, takes one JSON line per request and
answers with the new runtime's pid. It holds no event loop and no threads when it forks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import signal
import socket
from pathlib import Path
from typing import Any


def socket_name(runtimes_dir: Path) -> str:
    digest = hashlib.sha256(str(runtimes_dir.resolve()).encode()).hexdigest()[:16]
    return f"\0hutch-runtime-launcher-{digest}"


def apply_limits(cpu: float | None, memory_mb: int | None) -> None:
    """The plan's memory becomes a limit on the memory each process of the runtime writes (its data: heap
    and private mappings), its CPU a set of cores. Not an address-space limit: Chromium, which the agent's
    browser runs, reserves far more address space than it uses and does not start under one."""
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if cpu:
        cores = sorted(os.sched_getaffinity(0))[: max(1, math.ceil(cpu))]
        os.sched_setaffinity(0, cores)


def _child(request: dict[str, Any]) -> None:
    """In the forked runtime: its own session, limits, log and data dir, then serve until stopped."""
    from hutch.runtimes.__main__ import serve

    os.setsid()
    home = Path(request["home"])
    log = os.open(home / "runtime.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ["HUTCH_DATA_DIR"] = str(home / "data")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    apply_limits(request.get("cpu"), request.get("memory_mb"))
    code = serve(home / "agent.json", int(request["port"]), "127.0.0.1", home / "workspace")
    os._exit(code)


def run(runtimes_dir: Path) -> None:
    import hutch.runtimes.__main__
    import hutch.runtimes.server  # noqa: F401 - loaded once here, shared by every fork

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited runtimes
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_name(runtimes_dir))
    server.listen(16)
    (runtimes_dir / "launcher.pid").write_text(str(os.getpid()))
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                request = json.loads(conn.makefile("r").readline())
            except ValueError:
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                try:
                    _child(request)
                finally:
                    os._exit(1)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hutch.runtimes.launcher")
    parser.add_argument("--runtimes-dir", type=Path, required=True)
    run(parser.parse_args().runtimes_dir)


if __name__ == "__main__":
    main()
