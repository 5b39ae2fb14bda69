"""localstripe drives a running ``hutch serve``: its own signed webhooks change plans and credit packages."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from hutch.db import migrations
from tests.conftest import TEST_PLANS, TEST_SECRET_KEY, PostgresServer
from tests.core.test_ratelimit_cross_process import ApiProcess
from tests.fakes.localstripe import TEST_API_KEY, LocalStripe


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    server = LocalStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hutch_with_localstripe(
    localstripe: LocalStripe, postgres: PostgresServer, tmp_path: Path
) -> Iterator[tuple[ApiProcess, str]]:
    localstripe.reset()
    url = postgres.create_database("hutch_localstripe")
    migrations.upgrade(url)
    secret = "whsec_localstripe_hutch_test"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_ENV="test",
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(tmp_path / "data"),
        HUTCH_SECRET_KEY=TEST_SECRET_KEY,
        HUTCH_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        HUTCH_LOG_LEVEL="WARNING",
        HUTCH_PLANS_FILE=str(TEST_PLANS),
        HUTCH_STRIPE_API_BASE=localstripe.base_url,
        HUTCH_STRIPE_SECRET_KEY=TEST_API_KEY,
        HUTCH_STRIPE_WEBHOOK_SECRET=secret,
    )
    api = ApiProcess(env, tmp_path / "serve.log")
    try:
        api.wait_ready()
        localstripe.add_webhook(f"{api.url}/webhooks/stripe", secret)
        yield api, url
    finally:
        api.stop()
        postgres.drop_database(url)


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    """localstripe posts each event about a second after it happens."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


@pytest.mark.slow
def test_localstripe_webhooks_move_the_plan_and_credit_purchases(
    localstripe: LocalStripe, hutch_with_localstripe: tuple[ApiProcess, str]
) -> None:
    api, _ = hutch_with_localstripe
    signup = httpx.post(
        f"{api.url}/api/v1/auth/signup",
        json={"email": "stripe-owner@example.com", "password": "correct horse battery"},
        timeout=10,
    )
    assert signup.status_code == 201, signup.text
    org_id = signup.json()["org"]["id"]
    me = {"Authorization": f"Bearer {signup.json()['access_token']}"}

    def get(path: str) -> dict[str, Any]:
        response = httpx.get(f"{api.url}{path}", headers=me, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    stripe = localstripe.client()
    customer = stripe.v1.customers.create(
        params={"email": "stripe-owner@example.com", "metadata": {"org_id": org_id}}
    )
    card = stripe.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    stripe.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    stripe.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})
    product = stripe.v1.products.create(params={"name": "Pro"})
    plan = stripe.v1.plans.create(
        params={"product": product.id, "amount": 9900, "currency": "usd", "interval": "month"}
    )

    subscription = stripe.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"plan": plan.id}],
            "metadata": {"org_id": org_id, "plan": "pro"},
        }
    )
    assert subscription.status == "active"
    # Stripe's events arrive in any order, some without the subscription's metadata: wait for both.
    state = eventually(
        lambda: (s := get("/api/v1/billing/subscription"))["status"] == "active" and s["plan"] == "pro" and s
    )
    assert state and state["plan"] == "pro" and state["current_period_end"] is not None

    stripe.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": card.id,
            "confirm": True,
            "metadata": {"org_id": org_id, "package_id": "credits-10"},
        }
    )
    balance = eventually(lambda: (b := get("/api/v1/billing/balance"))["credits_cents"] and b)
    assert balance == {"credits_cents": 1000 + 1000, "seconds": 0}  # the pack and the first-purchase bonus

    stripe.v1.subscriptions.cancel(subscription.id)
    # Status and plan change in one transaction, which the webhook's delivery may not have reached yet:
    # wait until both show it.
    state = eventually(
        lambda: (
            (s := get("/api/v1/billing/subscription"))["status"] == "canceled" and s["plan"] == "free" and s
        )
    )
    assert state and state["plan"] == "free"
    log = api.log.read_text()
    assert "Traceback" not in log, log
