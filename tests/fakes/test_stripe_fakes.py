"""The Stripe test doubles answer the official SDK as Stripe would: localstripe, the fake API, signing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.localstripe import LocalStripe
from tests.fakes.server import BackgroundServer
from tests.fakes.stripe_api import DAY, FakeStripe, ScriptedError, parse_form
from tests.fakes.stripe_signing import SIGNATURE_HEADER, new_webhook_secret, sign_event

# --- a webhook receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedWebhook:
    body: bytes
    signature: str


class WebhookReceiver(BackgroundServer):
    """Records what is posted to /webhooks and lets a test wait for it."""

    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self._arrived = threading.Condition()
        super().__init__(Starlette(routes=[Route("/webhooks", self._receive, methods=["POST"])]))

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._arrived:
            self.received.append(ReceivedWebhook(body, request.headers.get(SIGNATURE_HEADER, "")))
            self._arrived.notify_all()
        return Response(status_code=200)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


# --- localstripe ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def localstripe_server() -> Iterator[LocalStripe]:
    server = LocalStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> LocalStripe:
    localstripe_server.reset()
    return localstripe_server


def _card_customer(client: stripe.StripeClient) -> tuple[str, str]:
    """A customer whose default payment method is a working card: (customer id, card id)."""
    customer = client.v1.customers.create(params={"email": "owner@example.com", "metadata": {"org_id": "7"}})
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})
    return customer.id, card.id


def test_localstripe_serves_customers_plans_subscriptions_and_payment_intents(
    localstripe: LocalStripe,
) -> None:
    client = localstripe.client()
    customer, card = _card_customer(client)
    assert client.v1.customers.retrieve(customer).to_dict()["metadata"] == {"org_id": "7"}

    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 2900, "currency": "usd", "interval": "month"}
    )
    subscription = client.v1.subscriptions.create(params={"customer": customer, "items": [{"plan": plan.id}]})
    assert subscription.status == "active"
    shape = subscription.to_dict()  # localstripe answers an old API version's shape
    assert shape["items"]["data"][0]["plan"]["id"] == plan.id
    assert shape["current_period_end"] > shape["current_period_start"]

    intent = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "customer": customer,
            "payment_method": card,
            "confirm": True,
        }
    )
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"

    canceled = client.v1.subscriptions.cancel(subscription.id)
    assert canceled.status == "canceled"


def test_localstripe_refuses_a_missing_key_and_unknown_ids(localstripe: LocalStripe) -> None:
    with pytest.raises(stripe.AuthenticationError):
        localstripe.client("pk_test_publishable").v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        localstripe.client().v1.customers.retrieve("cus_missing")
    assert missing.value.http_status == 404


def test_localstripe_lacks_trials_which_is_why_the_fake_exists(localstripe: LocalStripe) -> None:
    client = localstripe.client()
    customer, _ = _card_customer(client)
    plan = client.v1.plans.create(
        params={"product": {"name": "Pro"}, "amount": 2900, "currency": "usd", "interval": "month"}
    )
    trial = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"plan": plan.id}], "trial_period_days": 14}
    )
    assert trial.status != "trialing"
    with pytest.raises(stripe.StripeError):
        client.v1.prices.create(params={"product": str(plan.product), "unit_amount": 100, "currency": "usd"})


def test_localstripe_delivers_signed_webhooks_the_sdk_accepts(
    localstripe: LocalStripe, receiver: WebhookReceiver
) -> None:
    secret = localstripe.add_webhook(receiver.url, events=["customer.created"])
    customer = localstripe.client().v1.customers.create(params={"email": "hook@example.com"})

    [delivery] = receiver.wait_for(1)
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, secret)
    assert event.type == "customer.created"
    assert event.data.object["id"] == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, new_webhook_secret())


def test_localstripe_reset_forgets_data_webhooks_and_pending_deliveries(
    localstripe: LocalStripe, receiver: WebhookReceiver
) -> None:
    localstripe.add_webhook(receiver.url)
    customer = localstripe.client().v1.customers.create(params={"email": "gone@example.com"})
    localstripe.reset()  # before localstripe's one-second delivery delay is over
    with pytest.raises(stripe.InvalidRequestError):
        localstripe.client().v1.customers.retrieve(customer.id)
    time.sleep(1.3)
    assert receiver.received == []


# --- the fake Stripe API --------------------------------------------------------------------------


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> FakeStripe:
    fake_stripe_server.reset()
    return fake_stripe_server


@pytest.fixture
def sdk(fake_stripe: FakeStripe) -> stripe.StripeClient:
    return fake_stripe.client()


def _prices(sdk: stripe.StripeClient) -> tuple[stripe.Price, stripe.Price]:
    monthly = sdk.v1.prices.create(
        params={
            "product_data": {"name": "Pro"},
            "unit_amount": 2900,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
        }
    )
    credits = sdk.v1.prices.create(
        params={"product_data": {"name": "1,000 credits"}, "unit_amount": 1000, "currency": "usd"}
    )
    return monthly, credits


def _trial_checkout(sdk: stripe.StripeClient, customer: str, monthly: str) -> stripe.checkout.Session:
    return sdk.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": monthly, "quantity": 1}],
            "subscription_data": {"trial_period_days": 14, "metadata": {"org_id": "7"}},
            "client_reference_id": "7",
            "metadata": {"org_id": "7"},
            "success_url": "https://hutch.test/billing/done?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://hutch.test/billing",
        }
    )


def _trialing_subscription(fake: FakeStripe, sdk: stripe.StripeClient) -> stripe.Subscription:
    monthly, _ = _prices(sdk)
    customer = sdk.v1.customers.create(params={"email": "owner@example.com"})
    session = _trial_checkout(sdk, customer.id, monthly.id)
    completed = fake.complete(session.id)[-1]["data"]["object"]
    return sdk.v1.subscriptions.retrieve(completed["subscription"])


def test_prices_one_time_and_recurring(sdk: stripe.StripeClient) -> None:
    monthly, credits = _prices(sdk)
    assert (monthly.type, monthly.to_dict()["recurring"]["interval"]) == ("recurring", "month")
    assert (credits.type, credits.recurring, credits.unit_amount) == ("one_time", None, 1000)
    assert sdk.v1.products.retrieve(str(credits.product)).name == "1,000 credits"
    assert sdk.v1.prices.retrieve(monthly.id).lookup_key == "pro_monthly"
    found = sdk.v1.prices.list(params={"lookup_keys": ["pro_monthly"], "active": True})
    assert [p.id for p in found.data] == [monthly.id]
    assert [p.id for p in sdk.v1.prices.list(params={"type": "one_time"}).data] == [credits.id]


def test_subscription_checkout_with_a_trial(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    monthly, _ = _prices(sdk)
    customer = sdk.v1.customers.create(params={"email": "owner@example.com", "metadata": {"org_id": "7"}})
    session = _trial_checkout(sdk, customer.id, monthly.id)
    assert session.url is not None and session.url.startswith(fake_stripe.base_url)
    assert (session.status, session.payment_status, session.subscription) == ("open", "unpaid", None)
    assert session.amount_total == 0  # nothing is due during the trial

    events = fake_stripe.complete(session.id)

    assert [e["type"] for e in events] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    for event in events:
        assert event["id"].startswith("evt_") and event["object"] == "event"
        assert event["livemode"] is False and event["api_version"] == stripe.api_version
        assert isinstance(event["created"], int) and "object" in event["data"]
    completed = events[-1]["data"]["object"]
    assert completed["client_reference_id"] == "7" and completed["metadata"] == {"org_id": "7"}
    assert completed["customer"] == customer.id and completed["payment_status"] == "no_payment_required"

    subscription = sdk.v1.subscriptions.retrieve(completed["subscription"])
    item = subscription.to_dict()["items"]["data"][0]
    assert subscription.status == "trialing"
    assert subscription.trial_end is not None and subscription.trial_start is not None
    assert subscription.trial_end - subscription.trial_start == 14 * DAY
    assert item["price"]["id"] == monthly.id
    assert item["current_period_end"] == subscription.trial_end
    assert subscription.to_dict()["current_period_end"] == subscription.trial_end  # older API shape
    assert subscription.metadata.to_dict() == {"org_id": "7"}

    expanded = sdk.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "line_items"]}
    )
    assert expanded.status == "complete" and expanded.url is None
    assert expanded.to_dict()["subscription"]["id"] == subscription.id
    assert expanded.to_dict()["line_items"]["data"][0]["price"]["id"] == monthly.id
    with pytest.raises(ValueError):
        fake_stripe.complete(session.id)


def test_payment_checkout_creates_a_paid_payment_intent(
    fake_stripe: FakeStripe, sdk: stripe.StripeClient
) -> None:
    _, credits = _prices(sdk)
    customer = sdk.v1.customers.create(params={"email": "buyer@example.com"})
    session = sdk.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "line_items": [{"price": credits.id, "quantity": 3}],
            "payment_intent_data": {"metadata": {"org_id": "7", "package": "credits"}},
            "metadata": {"org_id": "7"},
            "success_url": "https://hutch.test/done",
        }
    )
    assert session.amount_total == 3000

    events = fake_stripe.complete(session.id)

    types = [e["type"] for e in events]
    assert types == ["payment_intent.created", "payment_intent.succeeded", "checkout.session.completed"]
    completed = events[-1]["data"]["object"]
    assert completed["payment_status"] == "paid" and completed["subscription"] is None
    intent = sdk.v1.payment_intents.retrieve(completed["payment_intent"])
    assert (intent.status, intent.amount, intent.customer) == ("succeeded", 3000, customer.id)
    assert intent.metadata.to_dict() == {"org_id": "7", "package": "credits"}


def test_cancel_at_period_end_then_the_period_ends(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)

    updated = sdk.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})

    assert updated.cancel_at_period_end is True and updated.cancel_at == subscription.trial_end
    event = fake_stripe.events[-1]
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert [e["type"] for e in fake_stripe.advance_period_end(subscription.id)] == [
        "customer.subscription.deleted"
    ]
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "canceled"


def test_trial_end_failed_payment_and_recovery(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)

    failed = fake_stripe.fail_next_invoice(subscription.id)

    assert [e["type"] for e in failed][-2:] == ["invoice.payment_failed", "customer.subscription.updated"]
    invoice = failed[-2]["data"]["object"]
    assert (invoice["status"], invoice["attempt_count"], invoice["amount_due"]) == ("open", 1, 2900)
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription.id
    assert failed[-1]["data"]["previous_attributes"]["status"] == "trialing"
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "past_due"

    paid = fake_stripe.pay_invoice(subscription.id)

    assert [e["type"] for e in paid] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert sdk.v1.invoices.retrieve(invoice["id"]).status == "paid"
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "active"

    # With nothing open, paying means the next period is billed and paid.
    renewal = next(e for e in fake_stripe.pay_invoice(subscription.id) if e["type"] == "invoice.paid")
    renewed = renewal["data"]["object"]
    assert renewed["id"] != invoice["id"] and renewed["billing_reason"] == "subscription_cycle"
    assert sdk.v1.subscriptions.retrieve(subscription.id).latest_invoice == renewed["id"]


def test_advance_trial_end_activates(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)
    events = fake_stripe.advance_trial_end(subscription.id)
    assert events[-1]["data"]["object"]["status"] == "active"
    assert events[-1]["data"]["previous_attributes"]["status"] == "trialing"
    with pytest.raises(ValueError):
        fake_stripe.advance_trial_end(subscription.id)


def test_plan_change_and_cancel(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)
    team = sdk.v1.prices.create(
        params={
            "product_data": {"name": "Team"},
            "unit_amount": 9900,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    item_id = subscription.to_dict()["items"]["data"][0]["id"]

    changed = sdk.v1.subscriptions.update(
        subscription.id,
        params={"items": [{"id": item_id, "price": team.id}], "proration_behavior": "none"},
    )

    [item] = changed.to_dict()["items"]["data"]
    assert (item["id"], item["price"]["id"]) == (item_id, team.id)
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        sdk.v1.subscriptions.update(subscription.id, params={"items": [{"price": team.id}]})
    assert duplicate.value.param == "items[0][price]"

    canceled = sdk.v1.subscriptions.cancel(subscription.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert fake_stripe.events[-1]["type"] == "customer.subscription.deleted"


def test_billing_portal_session(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)
    portal = sdk.v1.billing_portal.sessions.create(
        params={"customer": str(subscription.customer), "return_url": "https://hutch.test/billing"}
    )
    assert portal.url.startswith(f"{fake_stripe.base_url}/p/session/")
    assert portal.customer == subscription.customer

    page = httpx.get(portal.url)
    assert "Cancel plan" in page.text
    form = f"{fake_stripe.base_url}/p/session/{portal.id}/cancel/{subscription.id}"
    answer = httpx.post(form)
    assert answer.status_code == 303 and answer.headers["location"] == "https://hutch.test/billing"
    assert sdk.v1.subscriptions.retrieve(subscription.id).cancel_at_period_end is True

    with pytest.raises(stripe.InvalidRequestError) as missing:
        sdk.v1.billing_portal.sessions.create(params={"customer": "cus_missing"})
    assert (missing.value.code, missing.value.param) == ("resource_missing", "customer")


def test_hosted_checkout_page_completes_and_redirects(
    fake_stripe: FakeStripe, sdk: stripe.StripeClient
) -> None:
    monthly, _ = _prices(sdk)
    customer = sdk.v1.customers.create(params={"email": "owner@example.com"})
    session = _trial_checkout(sdk, customer.id, monthly.id)
    assert session.url is not None

    assert "Start trial" in httpx.get(session.url).text
    answer = httpx.post(session.url)

    assert answer.status_code == 303
    assert answer.headers["location"] == f"https://hutch.test/billing/done?session={session.id}"
    assert sdk.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_errors_have_stripes_shape(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    monthly, _ = _prices(sdk)
    with pytest.raises(stripe.InvalidRequestError) as not_found:
        sdk.v1.subscriptions.retrieve("sub_missing")
    assert (not_found.value.http_status, not_found.value.code, not_found.value.param) == (
        404,
        "resource_missing",
        "id",
    )
    assert not_found.value.json_body == {
        "error": {
            "type": "invalid_request_error",
            "message": "No such subscription: 'sub_missing'",
            "param": "id",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        }
    }
    subscription = {"mode": "subscription"}
    cases: list[tuple[Any, str, str]] = [
        ({"line_items": [{"price": monthly.id, "quantity": 1}]}, "mode", "parameter_missing"),
        (
            {**subscription, "line_items": [{"price": "price_x", "quantity": 1}]},
            "line_items[0][price]",
            "resource_missing",
        ),
        (
            {**subscription, "line_items": [{"price": monthly.id}]},
            "line_items[0][quantity]",
            "parameter_missing",
        ),
        (
            {**subscription, "subscription_data": {"trial_days": 3}},
            "subscription_data[trial_days]",
            "parameter_unknown",
        ),
    ]
    for params, param, code in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            sdk.v1.checkout.sessions.create(params=params)
        assert (refused.value.http_status, refused.value.param, refused.value.code) == (400, param, code)
    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        sdk.v1.checkout.sessions.create(
            params={"mode": "payment", "line_items": [{"price": monthly.id, "quantity": 1}]}
        )


def test_authentication_is_required(fake_stripe: FakeStripe) -> None:
    anonymous = httpx.get(f"{fake_stripe.base_url}/v1/customers")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(stripe.AuthenticationError):
        fake_stripe.client("sk_live_not_a_test_key").v1.customers.list()
    strict = FakeStripe(api_key="sk_test_only_this")
    strict.start()
    try:
        with pytest.raises(stripe.AuthenticationError):
            strict.client("sk_test_another").v1.customers.list()
        assert strict.client().v1.customers.list().data == []
    finally:
        strict.stop()


def test_requests_are_recorded_in_bracket_notation(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    monthly, _ = _prices(sdk)
    _trial_checkout(sdk, sdk.v1.customers.create().id, monthly.id)
    [request] = fake_stripe.find_requests("POST", "/v1/checkout/sessions")
    assert request.params["line_items"] == [{"price": monthly.id, "quantity": "1"}]
    assert request.params["subscription_data"]["trial_period_days"] == "14"
    assert request.params["metadata"] == {"org_id": "7"}
    assert request.headers["authorization"].startswith("Bearer sk_test_")
    assert request.headers["idempotency-key"]
    assert parse_form("expand[]=a&expand[]=b&items[1][price]=p2&items[0][price]=p1&metadata[k]=") == {
        "expand": ["a", "b"],
        "items": [{"price": "p1"}, {"price": "p2"}],
        "metadata": {"k": ""},
    }


def test_idempotency_keys_replay_the_first_answer(sdk: stripe.StripeClient) -> None:
    first = sdk.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k1"})
    again = sdk.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k1"})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "k1"})


def test_scripted_errors_and_declined_cards(fake_stripe: FakeStripe, sdk: stripe.StripeClient) -> None:
    fake_stripe.script_error(ScriptedError(status=500, path="/v1/checkout/sessions"))
    fake_stripe.script_error(ScriptedError(status=429, type="invalid_request_error", code="rate_limit"))
    with pytest.raises(stripe.APIError):
        sdk.v1.checkout.sessions.create(params={"mode": "payment"})
    with pytest.raises(stripe.RateLimitError):
        sdk.v1.customers.list()
    with pytest.raises(stripe.CardError) as declined:
        sdk.v1.payment_intents.create(
            params={
                "amount": 500,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
            }
        )
    assert declined.value.code == "card_declined"
    assert fake_stripe.events[-1]["type"] == "payment_intent.payment_failed"


def test_events_reach_registered_endpoints_signed(
    fake_stripe: FakeStripe, sdk: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    secret = fake_stripe.add_webhook_endpoint(
        receiver.url, events=["checkout.session.completed", "customer.subscription.updated"]
    )
    monthly, _ = _prices(sdk)
    session = _trial_checkout(sdk, sdk.v1.customers.create().id, monthly.id)

    events = fake_stripe.complete(session.id)  # delivered before it returns
    [delivery] = receiver.received
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, secret)
    assert event.id == events[-1]["id"] and event.type == "checkout.session.completed"
    assert sdk.v1.events.retrieve(event.id).type == "checkout.session.completed"

    # Events caused by API calls go out in the background, after the answer.
    sdk.v1.subscriptions.update(
        events[-1]["data"]["object"]["subscription"], params={"cancel_at_period_end": True}
    )
    _, update = receiver.wait_for(2)
    updated = stripe.Webhook.construct_event(update.body, update.signature, secret)
    assert updated.type == "customer.subscription.updated"
    assert updated.request.idempotency_key is not None
    deadline = time.monotonic() + 5  # the fake records the answer just after the receiver sends it
    while len(fake_stripe.deliveries) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d.status for d in fake_stripe.deliveries] == [200, 200]


def test_expired_sessions_and_cancellation_for_nonpayment(
    fake_stripe: FakeStripe, sdk: stripe.StripeClient
) -> None:
    subscription = _trialing_subscription(fake_stripe, sdk)
    fake_stripe.fail_next_invoice(subscription.id)
    retry = fake_stripe.fail_next_invoice(subscription.id)
    assert [e["type"] for e in retry] == ["invoice.payment_failed"]
    assert retry[0]["data"]["object"]["attempt_count"] == 2
    [ended] = fake_stripe.cancel_for_nonpayment(subscription.id)
    assert ended["type"] == "customer.subscription.deleted"
    assert ended["data"]["object"]["cancellation_details"]["reason"] == "payment_failed"

    monthly = subscription.to_dict()["items"]["data"][0]["price"]["id"]
    abandoned = _trial_checkout(sdk, str(subscription.customer), monthly)
    assert sdk.v1.checkout.sessions.expire(abandoned.id).status == "expired"
    assert fake_stripe.events[-1]["type"] == "checkout.session.expired"
    with pytest.raises(ValueError):
        fake_stripe.complete(abandoned.id)


# --- signing --------------------------------------------------------------------------------------


def test_signed_events_verify_with_the_sdk() -> None:
    secret = new_webhook_secret()
    event = {"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}
    signed = sign_event(event, secret)
    assert stripe.WebhookSignature.verify_header(signed.body, signed.signature, secret)
    assert stripe.Webhook.construct_event(signed.body, signed.headers[SIGNATURE_HEADER], secret).id == "evt_1"


@pytest.mark.parametrize("spoil", ["wrong_secret", "stale", "tampered"])
def test_spoiled_signatures_are_refused_by_the_sdk(spoil: str) -> None:
    secret = new_webhook_secret()
    event = {"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}
    signed = sign_event(event, secret, **{spoil: True})
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(signed.body, signed.signature, secret)
