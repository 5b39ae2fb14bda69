"""`hutch serve`'s job worker runs as a supervised child: started again when it dies, stopped with serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hutch.worker_process import WorkerProcess, usable_cores, worker_count, worker_processes


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_that_dies_is_started_again_and_stopped_with_serve(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    # Each start appends a line; the child then waits until it is told to stop.
    script = f"open({str(starts)!r}, 'a').write('x\\n'); import time; time.sleep(60)"
    process = WorkerProcess(dict(os.environ), [sys.executable, "-c", script])
    process.start()
    try:
        wait_until(lambda: starts.exists() and starts.read_text().count("x") == 1)
        first = process.pid
        assert first is not None
        os.kill(first, 9)
        wait_until(lambda: starts.read_text().count("x") == 2)
        assert process.pid != first
    finally:
        process.stop()
    last = process.pid
    assert last is not None
    wait_until(lambda: not _alive(last))
    time.sleep(1.5)  # longer than the restart delay: a stopped worker stays stopped
    assert starts.read_text().count("x") == 2


def test_serve_starts_a_worker_per_core_but_one_unless_told_and_stops_them_together(tmp_path: Path) -> None:
    assert worker_count(0) == max(1, usable_cores() - 1)  # a core left to the API and the database
    assert worker_count(3) == 3
    started = tmp_path / "started"
    # Each child notes its start and takes 1 s to stop once told (a worker finishing its running jobs).
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)))\n"
        f"open({str(started)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "time.sleep(60)\n"
    )
    with worker_processes(dict(os.environ), 3, [sys.executable, "-c", script]) as workers:
        wait_until(lambda: started.exists() and len(started.read_text().split()) == 3)
        pids = {worker.pid for worker in workers}
        assert len(pids) == 3 and None not in pids
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2.5  # told at once, not one after the other (3 s)
    assert not any(_alive(pid) for pid in pids if pid is not None)


def test_the_worker_stops_when_serve_dies(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = (
        "import signal, sys, time\n"
        "from hutch.worker_process import exit_with_parent\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "exit_with_parent()\n"
        f"open({str(ready)!r}, 'w').write('ok')\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE)
    try:
        wait_until(ready.exists)
        assert worker.stdin is not None
        worker.stdin.close()  # what the kernel does when `hutch serve` dies, even by kill -9
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def test_workers_beside_the_api_run_at_a_lower_priority() -> None:
    """`hutch serve`'s workers yield the cores to its API (HUTCH_WORKER_NICENESS): webhooks are acknowledged
    first on a busy machine."""
    script = "import os, hutch.worker_process as w; w.lower_priority({}); print(os.nice(0))"
    for niceness in (5, 0):
        ran = subprocess.run(
            [sys.executable, "-c", script.format(niceness)], capture_output=True, text=True, check=True
        )
        assert int(ran.stdout) == os.nice(0) + niceness
