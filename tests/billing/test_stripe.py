"""Subscriptions, trials and purchases through the official Stripe SDK against the local Stripe API, with
its events signed as Stripe signs them and posted to ``/webhooks/stripe``."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.billing.models import BillingAccount, LedgerEntry, RevenueEvent, StripeEvent, SubscriptionStatus
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.stripe_signing import new_webhook_secret, sign_event

JSON = dict[str, Any]


@dataclass
class Paying:
    """Hutch with Stripe configured, the fake Stripe behind it, and a way to deliver its events."""

    client: AsyncClient
    stripe: FakeStripe
    resources: Resources
    session: AsyncSession
    secret: str

    async def deliver(self, events: list[JSON], **signing: Any) -> list[tuple[int, JSON]]:
        answers = []
        for event in events:
            signed = sign_event(event, self.secret, **signing)
            response = await self.client.post("/webhooks/stripe", content=signed.body, headers=signed.headers)
            answers.append((response.status_code, response.json()))
        return answers

    async def subscription(self, account: Account) -> JSON:
        response = await self.client.get("/api/v1/billing/subscription", headers=account.headers)
        assert response.status_code == 200
        body: JSON = response.json()
        return body

    async def subscribe(self, account: Account, plan: str = "starter") -> tuple[str, list[JSON]]:
        started = await self.client.post(
            "/api/v1/billing/checkout",
            json={
                "plan": plan,
                "success_url": "https://app.example/ok",
                "cancel_url": "https://app.example/no",
            },
            headers=account.headers,
        )
        assert started.status_code == 200, started.text
        events = self.stripe.complete(started.json()["session_id"])
        await self.deliver(events)
        account_row = await self.session.get(BillingAccount, account.org.id, populate_existing=True)
        assert account_row is not None and account_row.stripe_subscription_id
        return account_row.stripe_subscription_id, events


@pytest.fixture
async def paying(
    fake_stripe_server: FakeStripe,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Paying]:
    fake_stripe_server.reset()
    secret = new_webhook_secret()
    configured = settings.model_copy(
        update={
            "stripe_api_base": fake_stripe_server.base_url,
            "stripe_secret_key": SecretStr(TEST_API_KEY),
            "stripe_webhook_secret": SecretStr(secret),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            yield Paying(client, fake_stripe_server, resources, session, secret)
    finally:
        assert resources.stripe is not None
        await resources.stripe.close()


async def test_trial_active_past_due_active_canceled(paying: Paying, settings: Settings) -> None:
    owner = await create_account(paying.session, settings)
    plans = (await paying.client.get("/api/v1/billing/plans")).json()["items"]
    assert {p["id"]: p["available"] for p in plans}["starter"] is True

    subscription_id, _ = await paying.subscribe(owner, "starter")
    checkout = paying.stripe.find_requests("POST", "/v1/checkout/sessions")[-1].params
    assert checkout["subscription_data"]["trial_period_days"] == "2"  # the 48-hour trial
    assert checkout["client_reference_id"] == owner.org.id
    state = await paying.subscription(owner)
    assert (state["plan"], state["status"]) == ("starter", "trialing")
    assert state["trial_end"] is not None and state["current_period_end"] is not None

    await paying.deliver(paying.stripe.advance_trial_end(subscription_id))
    assert (await paying.subscription(owner))["status"] == "active"
    revenue = (
        await paying.session.scalars(select(RevenueEvent).where(RevenueEvent.org_id == owner.org.id))
    ).all()
    assert [r.amount_cents for r in revenue] == [1900]

    await paying.deliver(paying.stripe.fail_next_invoice(subscription_id))
    state = await paying.subscription(owner)
    assert (state["plan"], state["status"]) == ("starter", "past_due")
    jobs = paying.resources.jobs
    assert isinstance(jobs, RecordingJobQueue)
    assert "billing.notify_payment_failed" in [name for name, _ in jobs.deferred]

    await paying.deliver(paying.stripe.pay_invoice(subscription_id))
    assert (await paying.subscription(owner))["status"] == "active"

    canceled = await paying.client.post("/api/v1/billing/subscription/cancel", headers=owner.headers)
    assert canceled.status_code == 200 and canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["status"] == "active"  # paid until the period ends
    await paying.deliver(paying.stripe.advance_period_end(subscription_id))
    state = await paying.subscription(owner)
    assert (state["plan"], state["status"]) == ("free", "canceled")
    again = await paying.client.post("/api/v1/billing/subscription/cancel", headers=owner.headers)
    assert again.status_code == 409


async def test_every_event_replayed_twenty_times_has_one_effect(paying: Paying, settings: Settings) -> None:
    owner = await create_account(paying.session, settings)
    subscription_id, first = await paying.subscribe(owner, "pro")
    events = first + paying.stripe.advance_trial_end(subscription_id)
    await paying.deliver(events)
    for _ in range(20):
        answers = await paying.deliver(events)
        assert {status for status, _ in answers} == {200}
        assert {body["status"] for _, body in answers} == {"duplicate"}
    stored = await paying.session.scalar(select(func.count()).select_from(StripeEvent))
    assert stored == len({e["id"] for e in events})
    revenue = await paying.session.scalar(
        select(func.count()).select_from(RevenueEvent).where(RevenueEvent.org_id == owner.org.id)
    )
    assert revenue == 1
    assert (await paying.subscription(owner))["status"] == "active"


def _restamp(events: list[JSON], start: int) -> list[JSON]:
    """The events a second apart, in the order Stripe made them."""
    return [{**event, "created": start + n} for n, event in enumerate(events)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_shuffled_events_end_in_the_state_of_the_newest(
    paying: Paying, settings: Settings, seed: int
) -> None:
    owner = await create_account(paying.session, settings)
    started = await paying.client.post(
        "/api/v1/billing/checkout",
        json={"plan": "starter", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"},
        headers=owner.headers,
    )
    events = paying.stripe.complete(started.json()["session_id"])
    subscription_id = next(e for e in events if e["type"] == "customer.subscription.created")["data"][
        "object"
    ]["id"]
    events += paying.stripe.advance_trial_end(subscription_id)
    events += paying.stripe.fail_next_invoice(subscription_id)
    stamped = _restamp(events, start=1_800_000_000)
    random.Random(seed).shuffle(stamped)
    await paying.deliver(stamped)
    assert paying.stripe.get(subscription_id)["status"] == "past_due"
    state = await paying.subscription(owner)
    assert (state["plan"], state["status"]) == ("starter", "past_due")


async def test_purchases_credit_the_ledger_once_with_a_first_purchase_bonus(
    paying: Paying, settings: Settings
) -> None:
    owner = await create_account(paying.session, settings)
    packages = (await paying.client.get("/api/v1/billing/packages", headers=owner.headers)).json()["items"]
    assert {p["id"]: p["available"] for p in packages} == {"credits-10": True, "time-1h": True}

    async def buy(package_id: str) -> list[JSON]:
        bought = await paying.client.post(
            "/api/v1/billing/purchase", json={"package_id": package_id}, headers=owner.headers
        )
        assert bought.status_code == 200, bought.text
        return paying.stripe.complete(bought.json()["session_id"])

    events = await buy("credits-10")
    assert {"checkout.session.completed", "payment_intent.succeeded"} <= {e["type"] for e in events}
    await paying.deliver(events)
    await paying.deliver(events)
    balance = (await paying.client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance == {"credits_cents": 1000 + 1000, "seconds": 0}  # the pack and the one-time bonus
    await paying.deliver(await buy("time-1h"))
    balance = (await paying.client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance == {"credits_cents": 2000, "seconds": 3600}  # no second bonus
    kinds = (
        await paying.session.scalars(
            select(LedgerEntry.kind)
            .where(LedgerEntry.org_id == owner.org.id)
            .order_by(LedgerEntry.created_at)
        )
    ).all()
    assert [k.value for k in kinds] == ["purchase", "bonus", "purchase"]
    sources = (
        await paying.session.execute(
            select(RevenueEvent.amount_cents, RevenueEvent.package).where(RevenueEvent.org_id == owner.org.id)
        )
    ).all()
    assert sorted(sources) == [(900, "time-1h"), (1000, "credits-10")]


async def test_bad_signatures_change_nothing(paying: Paying, settings: Settings) -> None:
    owner = await create_account(paying.session, settings)
    started = await paying.client.post(
        "/api/v1/billing/checkout",
        json={"plan": "starter", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"},
        headers=owner.headers,
    )
    events = paying.stripe.complete(started.json()["session_id"])
    for variant in ({"wrong_secret": True}, {"stale": True}, {"tampered": True}):
        answers = await paying.deliver(events, **variant)
        assert {status for status, _ in answers} == {400}, variant
    missing = await paying.client.post("/webhooks/stripe", content=json.dumps(events[0]))
    assert missing.status_code == 400 and "Stripe-Signature" in missing.json()["detail"]
    garbage = sign_event(b"not json", paying.secret)
    answer = await paying.client.post("/webhooks/stripe", content=garbage.body, headers=garbage.headers)
    assert answer.status_code == 400
    assert await paying.session.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert (await paying.subscription(owner))["status"] == "none"
    org = await paying.session.get(Org, owner.org.id, populate_existing=True)
    assert org is not None and org.plan == "free"


async def test_unknown_events_are_acknowledged_and_ignored(paying: Paying) -> None:
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "type": "customer.tax_id.created",
        "created": 1_800_000_000,
        "data": {"object": {"id": "txi_1", "object": "tax_id"}},
    }
    answers = await paying.deliver([event, event])
    assert [body["status"] for _, body in answers] == ["ignored", "duplicate"]
    stored = await paying.session.get(StripeEvent, "evt_unknown_1")
    assert stored is not None and stored.handled is False


async def test_plan_change_portal_and_refusals(paying: Paying, settings: Settings) -> None:
    owner = await create_account(paying.session, settings)
    member = await create_account(
        paying.session,
        settings,
        org=owner.org,
        role=__import__("hutch.accounts.models", fromlist=["OrgRole"]).OrgRole.MEMBER,
    )
    body = {"plan": "starter", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}
    assert (
        await paying.client.post("/api/v1/billing/checkout", json=body, headers=member.headers)
    ).status_code == 403
    free = await paying.client.post(
        "/api/v1/billing/checkout", json={**body, "plan": "free"}, headers=owner.headers
    )
    assert free.status_code == 400
    unknown = await paying.client.post(
        "/api/v1/billing/checkout", json={**body, "plan": "gold"}, headers=owner.headers
    )
    assert unknown.status_code == 404
    bad_url = await paying.client.post(
        "/api/v1/billing/checkout", json={**body, "success_url": "javascript:alert(1)"}, headers=owner.headers
    )
    assert bad_url.status_code == 422
    subscription_id, _ = await paying.subscribe(owner, "starter")
    twice = await paying.client.post("/api/v1/billing/checkout", json=body, headers=owner.headers)
    assert twice.status_code == 409
    changed = await paying.client.post(
        "/api/v1/billing/subscription/change", json={"plan": "pro"}, headers=owner.headers
    )
    assert changed.status_code == 200 and changed.json()["plan"] == "pro"
    assert paying.stripe.get(subscription_id)["metadata"]["plan"] == "pro"
    portal = await paying.client.post("/api/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 200 and portal.json()["url"].startswith("http")
    # One customer per org, however many times Checkout and the portal are opened.
    assert len(paying.stripe.find_requests("POST", "/v1/customers")) == 1


async def test_without_stripe_paid_things_say_how_to_get_them(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    body = {"plan": "starter", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}
    refused = await client.post("/api/v1/billing/checkout", json=body, headers=owner.headers)
    assert refused.status_code == 503 and "HUTCH_STRIPE_SECRET_KEY" in refused.json()["detail"]
    webhook = await client.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert webhook.status_code == 400 and "HUTCH_STRIPE_WEBHOOK_SECRET" in webhook.json()["detail"]


async def test_refunds_show_in_revenue_as_they_happen(paying: Paying, settings: Settings) -> None:
    owner = await create_account(paying.session, settings)
    paying.session.add(
        BillingAccount(org_id=owner.org.id, status=SubscriptionStatus.NONE, stripe_customer_id="cus_refunded")
    )
    await paying.session.commit()

    def refunded(event_id: str, amount: int) -> JSON:
        charge = {
            "id": "ch_1",
            "object": "charge",
            "customer": "cus_refunded",
            "amount": 1000,
            "amount_refunded": amount,
            "metadata": {},
        }
        return {
            "id": event_id,
            "object": "event",
            "type": "charge.refunded",
            "created": 1_800_000_000,
            "data": {"object": charge},
        }

    partial, full = refunded("evt_refund_1", 400), refunded("evt_refund_2", 1000)
    answers = await paying.deliver([partial, partial, full])
    assert [body["status"] for _, body in answers] == ["processed", "duplicate", "processed"]
    amounts = (
        await paying.session.scalars(
            select(RevenueEvent.amount_cents)
            .where(RevenueEvent.org_id == owner.org.id)
            .order_by(RevenueEvent.amount_cents)
        )
    ).all()
    assert amounts == [-600, -400]  # 1,000 refunded in all, in two steps


@pytest.mark.parametrize("applies_to", [("packages",), ("packages", "subscriptions")])
async def test_the_first_subscription_invoice_earns_the_bonus_when_the_plans_file_says_so(
    paying: Paying, settings: Settings, applies_to: tuple[str, ...]
) -> None:
    billing = paying.resources.plans.billing.model_copy(
        update={"first_purchase_bonus_applies_to": applies_to}
    )
    paying.resources.plans = paying.resources.plans.model_copy(update={"billing": billing})
    owner = await create_account(paying.session, settings)
    subscription_id, first = await paying.subscribe(owner, "starter")
    events = first + paying.stripe.advance_trial_end(subscription_id)  # the first paid invoice
    await paying.deliver(events)
    await paying.deliver(events)  # replayed: nothing more
    await paying.deliver(paying.stripe.pay_invoice(subscription_id))  # the next month's: no second bonus
    bonus = 1000 if "subscriptions" in applies_to else 0
    balance = (await paying.client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance["credits_cents"] == bonus

    bought = await paying.client.post(
        "/api/v1/billing/purchase", json={"package_id": "credits-10"}, headers=owner.headers
    )
    await paying.deliver(paying.stripe.complete(bought.json()["session_id"]))
    balance = (await paying.client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance["credits_cents"] == 1000 + 1000  # the pack and one bonus, whichever purchase earned it
