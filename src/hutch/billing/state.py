"""An org's subscription state, set from Stripe's subscription objects.

TRIALING / ACTIVE → PAST_DUE → CANCELED, and PAST_DUE back to ACTIVE. Events can arrive late or out of
order: each application carries the time Stripe produced the object (the event's ``created``), and an
object older than the stored state is ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.billing.models import BillingAccount, SubscriptionStatus
from hutch.billing.plans import FREE_PLAN, PlanCatalog
from hutch.billing.repository import SubscriptionRepository
from hutch.billing.stripe_gateway import plan_id_from_lookup_key

STATUSES = {
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}
LIVE = frozenset({SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE})


def set_status(account: BillingAccount, status: SubscriptionStatus, at: datetime) -> None:
    """The new status, and since when it is past due (the grace period counts from the first failure)."""
    if status is SubscriptionStatus.PAST_DUE:
        if account.status is not SubscriptionStatus.PAST_DUE or account.past_due_since is None:
            account.past_due_since = at
    else:
        account.past_due_since = None
    account.status = status


def _moment(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def plan_of_subscription(subscription: dict[str, Any], plans: PlanCatalog) -> str | None:
    """The plan a subscription pays for: its metadata, else its price's lookup key or id."""
    named = (subscription.get("metadata") or {}).get("plan")
    if named and plans.plan(named):
        return str(named)
    items = (subscription.get("items") or {}).get("data") or []
    for item in items:
        price = item.get("price") or {}
        by_key = plan_id_from_lookup_key(price.get("lookup_key"))
        if by_key and plans.plan(by_key):
            return by_key
        for plan in plans.plans:
            if plan.stripe_price_id and plan.stripe_price_id == price.get("id"):
                return plan.id
    return None


def period_end(subscription: dict[str, Any]) -> datetime | None:
    """Recent API versions keep the period on each item; older ones at the top level."""
    items = (subscription.get("items") or {}).get("data") or []
    ends = [i.get("current_period_end") for i in items if i.get("current_period_end")]
    return _moment(max(ends) if ends else subscription.get("current_period_end"))


async def account_for_customer(session: AsyncSession, customer_id: str | None) -> BillingAccount | None:
    if not customer_id:
        return None
    return await SubscriptionRepository(session).account_for_customer(customer_id)


async def apply_subscription(
    session: AsyncSession, plans: PlanCatalog, subscription: dict[str, Any], produced_at: datetime | None
) -> str | None:
    """Store what ``subscription`` says unless the stored state is newer; the org id it concerned."""
    org_id = (subscription.get("metadata") or {}).get("org_id")
    account = await session.get(BillingAccount, org_id, with_for_update=True) if org_id else None
    if account is None:
        account = await account_for_customer(session, subscription.get("customer"))
    if account is None and org_id and await session.get(Org, org_id) is not None:
        # A subscription made outside Hutch's Checkout (the dashboard, a script) for one of its orgs.
        account = BillingAccount(org_id=org_id, status=SubscriptionStatus.NONE)
        session.add(account)
    if account is None:
        return None  # not a Hutch customer (another app on the same Stripe account)
    # Stripe's times are whole seconds; an answer to Hutch's own call counts from the start of its second,
    # so an event of that same second is read back from Stripe rather than ignored.
    produced_at = produced_at or datetime.now(UTC).replace(microsecond=0)
    if account.stripe_state_at is not None and produced_at < account.stripe_state_at:
        return account.org_id
    status = STATUSES.get(str(subscription.get("status")))
    if status is None:
        return account.org_id  # incomplete: nothing is paid yet, nothing changes
    current = account.stripe_subscription_id
    if current and current != subscription["id"] and (status not in LIVE or account.status in LIVE):
        return account.org_id  # events of an older subscription, or a second one while one is live
    account.stripe_subscription_id = subscription["id"]
    account.stripe_customer_id = account.stripe_customer_id or subscription.get("customer")
    set_status(account, status, produced_at)
    account.current_period_end = period_end(subscription)
    account.trial_end = _moment(subscription.get("trial_end"))
    account.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    account.stripe_state_at = produced_at
    plan = plan_of_subscription(subscription, plans)
    if plan is not None:
        account.subscribed_plan = plan
    org = await session.get(Org, account.org_id, with_for_update=True)
    if org is not None:
        if status in LIVE and account.subscribed_plan:
            org.plan = account.subscribed_plan
        elif status is SubscriptionStatus.CANCELED:
            org.plan = FREE_PLAN
    await session.flush()
    return account.org_id
