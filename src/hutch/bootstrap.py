"""Start-up steps shared by the CLI commands: find the database, check it, migrate it."""

from __future__ import annotations

import errno
import gc
import socket
from dataclasses import dataclass

import psycopg
import structlog

from hutch.core.errors import StartupError
from hutch.db import migrations
from hutch.db.embedded import EmbeddedDatabaseError, EmbeddedPostgres, check_root_data_dir
from hutch.db.urls import describe, libpq_conninfo
from hutch.settings import Settings, ensure_generated_secrets

log = structlog.get_logger(__name__)


@dataclass
class DatabaseHandle:
    url: str
    settings: Settings  # with generated secrets filled in for local deployments
    embedded: EmbeddedPostgres | None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"Port {port} on {host} is already in use; stop the other program or choose another "
                    "port with --port or HUTCH_PORT."
                ) from None
            raise StartupError(
                f"Cannot listen on {host}:{port} ({exc.strerror}); check HUTCH_HOST."
            ) from None


def check_external_database(url: str) -> None:
    try:
        with psycopg.connect(libpq_conninfo(url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StartupError(
            f"Cannot connect to the database at {describe(url)} ({reason}); check HUTCH_DATABASE_URL."
        ) from None


def open_database(settings: Settings) -> DatabaseHandle:
    """The configured PostgreSQL, or the embedded one, started until ``handle.close()``."""
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        check_external_database(url)
        handle = DatabaseHandle(url=url, settings=settings, embedded=None)
    else:
        embedded = EmbeddedPostgres(settings.resolved_data_dir)
        try:
            check_root_data_dir(settings.resolved_data_dir)
            url = embedded.start()
        except EmbeddedDatabaseError as exc:
            embedded.stop()
            raise StartupError(str(exc)) from None
        handle = DatabaseHandle(url=url, settings=settings, embedded=embedded)
    if not settings.is_production:
        handle.settings = ensure_generated_secrets(settings)
    return handle


def migrate(url: str) -> None:
    try:
        migrations.upgrade(url)
    except Exception as exc:
        raise StartupError(
            f"Applying database migrations failed ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
            "see the log above."
        ) from exc


def require_current_schema(url: str) -> None:
    if migrations.current_revisions(url) != migrations.head_revisions():
        raise StartupError("The database schema is behind this version of Hutch; run: hutch db upgrade")


# Requests allocate thousands of objects that reference counting frees. Collecting the youngest generation
# every 700 allocations (the default) paused about one chat request in forty for a millisecond.
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Move what start-up made (modules, the app, pools) out of the collector's sight, and collect young
    objects less often, so fewer requests wait on a collection."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
