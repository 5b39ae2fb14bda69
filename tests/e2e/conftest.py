"""A real Hutch (`hutch serve` in its own process, on its own database) and Debian's Chromium driving it.

Screenshots of every step land in ``HUTCH_E2E_ARTIFACTS`` (default ``test-artifacts/e2e``), kept by CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import TEST_PLANS, TEST_SECRET_KEY, PostgresServer
from tests.fakes.server import free_port, wait_until
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.stripe_signing import new_webhook_secret, sign_event
from tests.log_scan import scan

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("HUTCH_E2E_ARTIFACTS", "test-artifacts/e2e"))


@dataclass
class LiveHutch:
    base_url: str
    stripe: FakeStripe
    webhook_secret: str
    log: Path

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Post Stripe's events to Hutch, signed as Stripe signs them."""
        for event in events:
            signed = sign_event(event, self.webhook_secret)
            answer = httpx.post(
                f"{self.base_url}/webhooks/stripe", content=signed.body, headers=signed.headers
            )
            assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def live_hutch(
    postgres: PostgresServer,
    migrated_template: str,
    fake_stripe_server: FakeStripe,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveHutch]:
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    url = postgres.create_database(prefix="hutch_e2e", template=migrated_template)
    home = tmp_path_factory.mktemp("e2e")
    port = free_port()
    secret = new_webhook_secret()
    fake_stripe_server.reset()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(home),
        HUTCH_HOST="127.0.0.1",
        HUTCH_PORT=str(port),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_PLANS_FILE=str(TEST_PLANS),
        HUTCH_STRIPE_API_BASE=fake_stripe_server.base_url,
        HUTCH_STRIPE_SECRET_KEY=TEST_API_KEY,
        HUTCH_STRIPE_WEBHOOK_SECRET=secret,
        HUTCH_EMBEDDING_PROVIDER="none",
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
        yield LiveHutch(base, fake_stripe_server, secret, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        postgres.drop_database(url)
        scan("hutch serve of the browser tests", log.read_text())


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
