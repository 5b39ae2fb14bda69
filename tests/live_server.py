"""`hutch serve` in a process of its own, on a database of its own: for browser tests and API fuzzing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from hutch.app import create_app
from hutch.db.engine import Database
from hutch.settings import Settings
from tests.conftest import TEST_PLANS, TEST_SECRET_KEY, PostgresServer, build_test_resources
from tests.fakes.server import BackgroundServer, free_port, wait_until
from tests.log_scan import scan


@dataclass(frozen=True)
class Served:
    base_url: str
    log: Path
    database_url: str = ""  # what the served Hutch runs on, for a test to set up what no page creates


@contextmanager
def serve_hutch(postgres: PostgresServer, template: str, home: Path, **settings: str) -> Iterator[Served]:
    """Start Hutch with ``settings`` (``HUTCH_*`` names); then stop it, drop its database, scan its log."""
    url = postgres.create_database(prefix="hutch_served", template=template)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(home),
        HUTCH_HOST="127.0.0.1",
        HUTCH_PORT=str(port),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_PLANS_FILE=str(TEST_PLANS),
        HUTCH_EMBEDDING_PROVIDER="none",
        **settings,
    )
    log = home / "hutch.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "hutch.cli", "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"hutch serve exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=60)
        yield Served(base, log, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        postgres.drop_database(url)
        scan(f"hutch serve ({home.name})", log.read_text())


@dataclass(frozen=True)
class ServedInThread:
    base_url: str
    database_url: str


@contextmanager
def serve_in_thread(
    postgres: PostgresServer, template: str, settings: Settings, prefix: str, **updates: Any
) -> Iterator[ServedInThread]:
    """Hutch on a database of its own, answering real HTTP from a thread of this process (a `hutch serve`
    of its own takes seconds more to start); ``updates`` change its settings."""
    url = postgres.create_database(prefix=prefix, template=template)
    configured = settings.model_copy(update={"database_url": SecretStr(url), **updates})
    server = BackgroundServer(create_app(resources=build_test_resources(configured, Database(url), url)))
    server.start()
    try:
        yield ServedInThread(server.base_url, url)
    finally:
        server.stop()
        postgres.drop_database(url)
