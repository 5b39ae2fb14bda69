"""The job workers `hutch serve` starts beside its API: child processes it supervises, by default one per
core but one (``HUTCH_WORKER_PROCESSES``).

A worker in the API's own process would share one event loop, and so one core, with every request: a
burst of chat turns would slow the acknowledgement of every webhook. And one worker is one core: turns that
hold no connection while their model thinks are bound by the CPU of the process running them. Each child
runs `hutch worker` on the same database (they share the queue; one chat's turns stay in order through
the queue's locks), is started again when it dies, and stops when `hutch serve` stops or dies (it watches
the pipe it was given as stdin and stops when that closes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 20.0  # the worker's own graceful shutdown waits 10 s for running jobs
MAX_RESTART_DELAY = 30.0


def worker_command() -> list[str]:
    return [sys.executable, "-m", "hutch", "worker", "--exit-with-parent"]


class WorkerProcess:
    """Runs `hutch worker` as a child and starts it again (waiting longer each time) while it keeps dying."""

    def __init__(self, environment: dict[str, str], command: list[str] | None = None) -> None:
        self._environment = environment
        self._command = command or worker_command()
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._supervisor = threading.Thread(target=self._supervise, name="hutch-worker-watch", daemon=True)

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def start(self) -> None:
        self._spawn()
        self._supervisor.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # Its own session: Ctrl-C in the terminal reaches `hutch serve`, which then stops the worker after
            # the API, instead of both racing. stdin is a pipe only we hold: when we die, it closes.
            self._child = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
                self._command, env=self._environment, stdin=subprocess.PIPE, start_new_session=True
            )
        log.info("job worker process started", pid=self._child.pid)

    def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            child = self._child
            assert child is not None
            started = time.monotonic()
            code = child.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                delay = 1.0  # it ran a good while: this is a new failure, not the same one again
            log.error("the job worker exited; starting it again", exit_code=code, retry_in_seconds=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_DELAY)
            self._spawn()

    def request_stop(self) -> None:
        """Tell the child to stop (SIGTERM) without waiting: several workers then stop side by side."""
        with self._lock:
            self._stopping.set()
            child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the child and wait for it (killing it after its grace period)."""
        if not self._stopping.is_set():
            self.request_stop()
        child = self._child
        if child is None or child.poll() is not None:
            return
        try:
            child.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the job worker did not stop in time; killing it", pid=child.pid)
            child.kill()
            child.wait()
        finally:
            if child.stdin is not None:
                with contextlib.suppress(OSError):
                    child.stdin.close()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or taskset limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(setting: int) -> int:
    """``HUTCH_WORKER_PROCESSES``: 0 means one per usable core but one, left to the API and the database,
    which share the machine (at least one). Workers that take every core starve the API's acknowledgements."""
    return setting or max(1, usable_cores() - 1)


@contextmanager
def worker_processes(
    environment: dict[str, str], count: int, command: list[str] | None = None
) -> Iterator[list[WorkerProcess]]:
    """``count`` supervised workers; on the way out all are told to stop at once, then waited for."""
    processes = [WorkerProcess(environment, command) for _ in range(count)]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.request_stop()
        for process in processes:
            process.stop()


def lower_priority(niceness: int) -> None:
    """In a worker beside the API (``HUTCH_WORKER_NICENESS``): the API's acknowledgements, which senders time
    and retry, come before more turn work when the two share the cores."""
    if niceness > 0:
        with contextlib.suppress(OSError):  # not allowed here: run at the same priority
            os.nice(niceness)


def exit_with_parent() -> None:
    """In the child: stop gracefully (SIGTERM to ourselves) once the parent's end of stdin closes."""

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds its lock,
        # which the interpreter then cannot take at exit.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hutch-parent-watch", daemon=True).start()
