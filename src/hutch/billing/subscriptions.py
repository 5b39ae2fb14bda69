"""Paying through Stripe: Checkout for plans (with trials) and packages, the Customer Portal, cancel, change.

What Hutch stores about a subscription changes only from Stripe's own answers: verified webhooks, or the
subscription object Stripe returns to a change Hutch asked for (applied with the same rules).
"""

from __future__ import annotations

import time
from typing import Any

from hutch.accounts.models import Org
from hutch.billing.inclusions import follow_plan
from hutch.billing.models import BillingAccount, SubscriptionStatus
from hutch.billing.plans import PlanCatalog
from hutch.billing.repository import BillingRepository
from hutch.billing.state import apply_subscription
from hutch.billing.stripe_gateway import StripeGateway, StripeNotConfigured
from hutch.core.errors import BadRequest, Conflict, NotFound
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.settings import Settings

LIVE = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
STRIPE_DAY_TRIALS_HOURS = 24  # whole days go as trial_period_days; other lengths as a trial_end time


class NoSubscription(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "This organisation has no subscription; start one with POST /api/v1/billing/checkout."
        )


class Subscriptions:
    def __init__(
        self, uow: UnitOfWork, plans: PlanCatalog, settings: Settings, stripe: StripeGateway | None
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.plans = plans
        self.settings = settings
        self._stripe = stripe

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Subscriptions:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow, resources.plans, resources.settings, resources.stripe)

    def stripe(self) -> StripeGateway:
        """Stripe's gateway; 503 naming the setting when it is not set (asked on use, so a request with
        bad input still hears about its input first)."""
        if self._stripe is None:
            raise StripeNotConfigured()
        return self._stripe

    def _return_url(self) -> str:
        return self.settings.base_url + "/"

    async def account(self, org_id: str, *, for_update: bool = False) -> BillingAccount:
        account = await self.session.get(BillingAccount, org_id, with_for_update=for_update)
        if account is None:
            account = BillingAccount(org_id=org_id, status=SubscriptionStatus.NONE)
            self.session.add(account)
            await self.session.flush()
            if for_update:
                await self.session.refresh(account, with_for_update=True)
        return account

    async def customer(self, principal: Principal) -> str:
        """The org's Stripe customer, created on first need (once, even with concurrent requests)."""
        account = await self.account(principal.org_id, for_update=True)
        if account.stripe_customer_id:
            return account.stripe_customer_id
        org = await self.session.get(Org, principal.org_id)
        assert org is not None
        email = None
        if principal.user_id:
            email = await BillingRepository(self.session).email_of_user(principal.user_id)
        account.stripe_customer_id = await self.stripe().create_customer(org.id, org.name, email)
        await self.session.flush()
        return account.stripe_customer_id

    async def checkout_plan(
        self, principal: Principal, plan_id: str, success_url: str, cancel_url: str
    ) -> tuple[str, str]:
        plan = self.plans.plan(plan_id)
        if plan is None:
            raise NotFound(detail=f"No plan '{plan_id}'; GET /api/v1/billing/plans lists them.")
        if not plan.is_paid:
            raise BadRequest(f"The {plan.name} plan is free; nothing to pay.")
        account = await self.account(principal.org_id)
        if account.status in LIVE and account.stripe_subscription_id:
            raise Conflict(
                "This organisation already has a subscription; change its plan with "
                "POST /api/v1/billing/subscription/change or manage it in the portal."
            )
        customer = await self.customer(principal)
        metadata = {"org_id": principal.org_id, "plan": plan.id}
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if plan.trial_hours and not account.stripe_subscription_id:  # one trial per org
            if plan.trial_hours % STRIPE_DAY_TRIALS_HOURS == 0:
                subscription_data["trial_period_days"] = plan.trial_hours // STRIPE_DAY_TRIALS_HOURS
            else:
                subscription_data["trial_end"] = int(time.time()) + plan.trial_hours * 3600
        return await self.stripe().checkout(
            {
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": principal.org_id,
                "line_items": [{"price": await self.stripe().plan_price(plan), "quantity": 1}],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "metadata": metadata,
                "subscription_data": subscription_data,
            }
        )

    async def checkout_package(
        self, principal: Principal, package_id: str, success_url: str | None, cancel_url: str | None
    ) -> tuple[str, str]:
        package = self.plans.package(package_id)
        if package is None:
            raise NotFound(detail=f"No package '{package_id}'; GET /api/v1/billing/packages lists them.")
        customer = await self.customer(principal)
        metadata = {"org_id": principal.org_id, "package_id": package.id}
        return await self.stripe().checkout(
            {
                "mode": "payment",
                "customer": customer,
                "client_reference_id": principal.org_id,
                "line_items": [{"price": await self.stripe().package_price(package), "quantity": 1}],
                "success_url": success_url or self._return_url(),
                "cancel_url": cancel_url or self._return_url(),
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata},
            }
        )

    async def portal(self, principal: Principal, return_url: str | None) -> str:
        customer = await self.customer(principal)
        return await self.stripe().portal(customer, return_url or self._return_url())

    async def _live_subscription(self, org_id: str) -> BillingAccount:
        account = await self.account(org_id, for_update=True)
        if account.status not in LIVE or not account.stripe_subscription_id:
            raise NoSubscription()
        return account

    async def cancel(self, principal: Principal) -> BillingAccount:
        """Cancel at the end of the paid period; the plan stays until then."""
        account = await self._live_subscription(principal.org_id)
        assert account.stripe_subscription_id is not None
        updated = await self.stripe().update_subscription(
            account.stripe_subscription_id, {"cancel_at_period_end": True}
        )
        await apply_subscription(self.session, self.plans, updated, None)
        follow_plan(self.uow, account.org_id)
        return account

    async def change_plan(self, principal: Principal, plan_id: str) -> BillingAccount:
        """Move the subscription to another paid plan (Stripe prorates)."""
        plan = self.plans.plan(plan_id)
        if plan is None or not plan.is_paid:
            raise BadRequest(f"'{plan_id}' is not a paid plan; to stop paying, cancel the subscription.")
        account = await self._live_subscription(principal.org_id)
        assert account.stripe_subscription_id is not None
        current = await self.stripe().subscription(account.stripe_subscription_id)
        item = current["items"]["data"][0]["id"]
        updated = await self.stripe().update_subscription(
            account.stripe_subscription_id,
            {
                "items": [{"id": item, "price": await self.stripe().plan_price(plan)}],
                "metadata": {"org_id": principal.org_id, "plan": plan.id},
                "cancel_at_period_end": False,
            },
        )
        await apply_subscription(self.session, self.plans, updated, None)
        follow_plan(self.uow, account.org_id)
        return account
