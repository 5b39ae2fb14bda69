"""A real Hutch (`hutch serve` in its own process, on its own database) and Debian's Chromium driving it.

Screenshots of every step land in ``HUTCH_E2E_ARTIFACTS`` (default ``test-artifacts/e2e``), kept by CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresServer
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.stripe_signing import new_webhook_secret, sign_event
from tests.live_server import serve_hutch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("HUTCH_E2E_ARTIFACTS", "test-artifacts/e2e"))


@dataclass
class LiveHutch:
    base_url: str
    stripe: FakeStripe
    webhook_secret: str
    database_url: str = ""

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
    secret = new_webhook_secret()
    fake_stripe_server.reset()
    stripe = {
        "HUTCH_STRIPE_API_BASE": fake_stripe_server.base_url,
        "HUTCH_STRIPE_SECRET_KEY": TEST_API_KEY,
        "HUTCH_STRIPE_WEBHOOK_SECRET": secret,
    }
    with serve_hutch(postgres, migrated_template, tmp_path_factory.mktemp("e2e"), **stripe) as served:
        yield LiveHutch(served.base_url, fake_stripe_server, secret, served.database_url)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
