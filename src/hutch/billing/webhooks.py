"""Stripe webhook events, verified by the router, applied here once each.

The event id is stored first (unique): a replay finds it and changes nothing. Subscription events set the
state with the ordering rules of :mod:`hutch.billing.state`; when an event is exactly as old as the stored
state, the subscription is read back from Stripe so the newest state wins. Paid purchases credit the
ledger under a reference (the PaymentIntent), so the Checkout and PaymentIntent events of one payment
count once. Emails to owners are jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from hutch.billing.inclusions import follow_plan
from hutch.billing.ledger import Ledger
from hutch.billing.models import (
    BillingAccount,
    LedgerKind,
    LedgerUnit,
    StripeEvent,
    SubscriptionStatus,
)
from hutch.billing.plans import PlanCatalog
from hutch.billing.repository import RevenueRepository, SubscriptionRepository
from hutch.billing.state import LIVE, account_for_customer, apply_subscription, set_status
from hutch.billing.stripe_gateway import StripeGateway
from hutch.db.engine import UnitOfWork

log = structlog.get_logger(__name__)

PAYMENT_FAILED_JOB = "billing.notify_payment_failed"
SUBSCRIPTION_EVENTS = frozenset(
    {"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}
)
# Events after which what the plan includes may have to be provisioned, suspended or resumed. The flow
# reads the state they leave, so replays and any order end the same.
FOLLOWED_EVENTS = SUBSCRIPTION_EVENTS | {
    "checkout.session.completed",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
}


class WebhookProcessor:
    def __init__(self, uow: UnitOfWork, plans: PlanCatalog, stripe: StripeGateway | None) -> None:
        self.uow = uow
        self.session = uow.session
        self.plans = plans
        self.stripe = stripe
        self.ledger = Ledger(uow, low_balance_threshold_cents=plans.billing.low_balance_threshold_cents)
        self.subscriptions = SubscriptionRepository(uow.session)
        self.revenue = RevenueRepository(uow.session)

    async def handle(self, event: dict[str, Any]) -> str:
        """``processed``, ``ignored`` (a type Hutch does not use) or ``duplicate``."""
        kind = str(event["type"])
        created = datetime.fromtimestamp(int(event["created"]), UTC)
        if not await self.subscriptions.record_event(event["id"], kind, created):
            return "duplicate"
        obj: dict[str, Any] = event["data"]["object"]
        org_id: str | None
        if kind in SUBSCRIPTION_EVENTS:
            org_id = await self._subscription(obj, created)
        elif kind == "checkout.session.completed":
            org_id = await self._checkout_completed(obj)
        elif kind == "invoice.payment_succeeded":
            org_id = await self._invoice_paid(obj)
        elif kind == "invoice.payment_failed":
            org_id = await self._invoice_failed(obj, created)
        elif kind == "payment_intent.succeeded":
            org_id = await self._payment_succeeded(obj)
        elif kind == "charge.refunded":
            org_id = await self._refunded(obj)
        else:
            await self._mark(event["id"], handled=False, org_id=None)
            return "ignored"
        await self._mark(event["id"], handled=True, org_id=org_id)
        if org_id is not None and kind in FOLLOWED_EVENTS:
            follow_plan(self.uow, org_id)
        log.info("stripe event applied", event_id=event["id"], type=kind, org_id=org_id)
        return "processed"

    async def _mark(self, event_id: str, *, handled: bool, org_id: str | None) -> None:
        row = await self.session.get(StripeEvent, event_id)
        assert row is not None
        row.handled, row.org_id = handled, org_id

    async def _subscription(self, subscription: dict[str, Any], created: datetime) -> str | None:
        account = await self._account_of(subscription)
        if (
            account is not None
            and account.stripe_state_at == created
            and self.stripe is not None
            and subscription.get("id")
        ):
            # As old as what is stored: the order within that second is unknown, so ask Stripe.
            subscription = await self.stripe.subscription(subscription["id"])
        return await apply_subscription(self.session, self.plans, subscription, created)

    async def _account_of(self, obj: dict[str, Any]) -> BillingAccount | None:
        org_id = (obj.get("metadata") or {}).get("org_id")
        if org_id:
            account = await self.session.get(BillingAccount, org_id, with_for_update=True)
            if account is not None:
                return account
        return await account_for_customer(self.session, obj.get("customer"))

    async def _linked_account(self, org_id: str | None, customer: str | None) -> BillingAccount | None:
        """The org's billing account, recording its Stripe customer (Checkout may have made one)."""
        if not org_id:
            return await account_for_customer(self.session, customer)
        account = await self.session.get(BillingAccount, org_id, with_for_update=True)
        if account is None:
            account = BillingAccount(org_id=org_id, status=SubscriptionStatus.NONE)
            self.session.add(account)
        if customer and not account.stripe_customer_id:
            account.stripe_customer_id = customer
        await self.session.flush()
        return account

    async def _checkout_completed(self, checkout: dict[str, Any]) -> str | None:
        metadata = checkout.get("metadata") or {}
        org_id = checkout.get("client_reference_id") or metadata.get("org_id")
        account = await self._linked_account(org_id, checkout.get("customer"))
        if account is None:
            return None
        if checkout.get("mode") == "payment" and checkout.get("payment_status") == "paid":
            reference = checkout.get("payment_intent") or checkout["id"]
            await self._credit_package(
                account, metadata.get("package_id"), str(reference), checkout.get("amount_total")
            )
        return account.org_id

    async def _refunded(self, charge: dict[str, Any]) -> str | None:
        """A refund shows in revenue as a negative amount: what was refunded since the last event about this
        charge (``amount_refunded`` is cumulative). Prepaid credits already granted stay; an admin can take
        them back with a negative grant."""
        account = await self._account_of(charge)
        refunded = int(charge.get("amount_refunded") or 0)
        if account is None or refunded <= 0:
            return account.org_id if account else None
        prefix = f"refund:{charge['id']}:"
        already = await self.revenue.total_from(prefix)
        delta = refunded + already  # refunds so far are stored negative
        if delta > 0:
            await self._revenue(account.org_id, f"{prefix}{refunded}", "refund", -delta, None)
        return account.org_id

    async def _payment_succeeded(self, intent: dict[str, Any]) -> str | None:
        metadata = intent.get("metadata") or {}
        if not metadata.get("package_id"):
            return None  # a subscription's invoice payment: the invoice events cover it
        account = await self._linked_account(metadata.get("org_id"), intent.get("customer"))
        if account is None:
            return None
        await self._credit_package(
            account, metadata["package_id"], intent["id"], intent.get("amount_received")
        )
        return account.org_id

    async def _credit_package(
        self, account: BillingAccount, package_id: str | None, reference: str, paid_cents: Any
    ) -> None:
        package = self.plans.package(package_id or "")
        if package is None:
            log.warning("paid checkout for an unknown package", package_id=package_id, reference=reference)
            return
        # Every write below is keyed by the payment, so the second event of one payment adds nothing.
        for unit, amount in (
            (LedgerUnit.CREDITS, package.credits_cents),
            (LedgerUnit.SECONDS, package.seconds),
        ):
            if amount:
                await self.ledger.post(
                    account.org_id,
                    unit,
                    LedgerKind.PURCHASE,
                    amount,
                    description=f"Purchase: {package.name}",
                    reference=f"purchase:{reference}:{unit.value}",
                )
        await self._first_purchase_bonus(account, "packages")
        await self._revenue(
            account.org_id,
            f"purchase:{reference}",
            "purchase",
            paid_cents or package.price_cents,
            None,
            package=package.id,
        )

    async def _first_purchase_bonus(
        self, account: BillingAccount, kind: Literal["packages", "subscriptions"]
    ) -> None:
        """The plans file's first-purchase bonus, once per org (keyed by the org: a replayed event, or a
        package after a subscription, adds nothing), when ``kind`` of purchase earns it."""
        bonus = self.plans.billing.first_purchase_bonus_cents
        if kind not in self.plans.billing.first_purchase_bonus_applies_to:
            return
        if bonus and not account.first_purchase_done:
            await self.ledger.post(
                account.org_id,
                LedgerUnit.CREDITS,
                LedgerKind.BONUS,
                bonus,
                description="First purchase bonus",
                reference=f"bonus:first-purchase:{account.org_id}",
            )
        account.first_purchase_done = True

    async def _revenue(
        self, org_id: str, source: str, kind: str, amount: Any, plan: str | None, package: str | None = None
    ) -> None:
        await self.revenue.add(
            org_id, source, kind, int(amount or 0), self.plans.billing.currency, plan, package
        )

    @staticmethod
    def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
        parent = (invoice.get("parent") or {}).get("subscription_details") or {}
        found = parent.get("subscription") or invoice.get("subscription")
        return str(found) if found else None

    async def _invoice_paid(self, invoice: dict[str, Any]) -> str | None:
        account = await account_for_customer(self.session, invoice.get("customer"))
        if account is None:
            return None
        plan_id = account.subscribed_plan
        if self._invoice_subscription(invoice) and int(invoice.get("amount_paid") or 0) > 0:
            await self._revenue(
                account.org_id, f"invoice:{invoice['id']}", "subscription", invoice["amount_paid"], plan_id
            )
            await self._first_purchase_bonus(account, "subscriptions")
        plan = self.plans.plan(plan_id or "")
        if plan is not None and plan.limits.included_credits_cents and self._invoice_subscription(invoice):
            await self.ledger.post(
                account.org_id,
                LedgerUnit.CREDITS,
                LedgerKind.INCLUDED,
                plan.limits.included_credits_cents,
                description=f"Included with the {plan.name} plan",
                reference=f"included:{invoice['id']}",
            )
        return account.org_id

    async def _invoice_failed(self, invoice: dict[str, Any], created: datetime) -> str | None:
        account = await account_for_customer(self.session, invoice.get("customer"))
        if account is None:
            return None
        subscription = self._invoice_subscription(invoice)
        newer_state = account.stripe_state_at is not None and account.stripe_state_at > created
        if subscription == account.stripe_subscription_id and account.status in LIVE and not newer_state:
            set_status(account, SubscriptionStatus.PAST_DUE, created)
            account.stripe_state_at = created
        self.uow.defer(
            PAYMENT_FAILED_JOB,
            org_id=account.org_id,
            amount_cents=int(invoice.get("amount_due") or 0),
            invoice_url=invoice.get("hosted_invoice_url"),
        )
        return account.org_id
