"""Stripe through its official SDK, at ``HUTCH_STRIPE_API_BASE`` when set (a local Stripe in tests).

Prices: a plan or package names its Stripe Price with ``stripe_price_id``; without one, Hutch finds or
creates a Price with the lookup key ``hutch_plan_<id>`` / ``hutch_package_<id>`` at the configured amount,
so an operator only needs a secret key to start selling.
"""

from __future__ import annotations

from typing import Any, cast

import stripe

from hutch.billing.plans import Package, Plan, PlanCatalog
from hutch.core.errors import ServiceUnavailable
from hutch.settings import Settings

PLAN_LOOKUP_PREFIX = "hutch_plan_"
PACKAGE_LOOKUP_PREFIX = "hutch_package_"


class StripeNotConfigured(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Payments are not set up on this service (HUTCH_STRIPE_SECRET_KEY is missing); "
            "ask the operator, or an admin can assign the plan."
        )


class StripeUnavailable(ServiceUnavailable):
    def __init__(self, what: str) -> None:
        super().__init__(f"Stripe did not answer ({what}); try again in a moment.")


def plan_lookup_key(plan: Plan) -> str:
    return f"{PLAN_LOOKUP_PREFIX}{plan.id}_{plan.price_cents}_{plan.interval}"


def package_lookup_key(package: Package) -> str:
    return f"{PACKAGE_LOOKUP_PREFIX}{package.id}_{package.price_cents}"


def plan_id_from_lookup_key(lookup_key: str | None) -> str | None:
    if not lookup_key or not lookup_key.startswith(PLAN_LOOKUP_PREFIX):
        return None
    return lookup_key[len(PLAN_LOOKUP_PREFIX) :].rsplit("_", 2)[0]


class StripeGateway:
    def __init__(self, settings: Settings, plans: PlanCatalog) -> None:
        if settings.stripe_secret_key is None:
            raise StripeNotConfigured()
        base = {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
        self._http = stripe.HTTPXClient(timeout=20)
        self.client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
            http_client=self._http,
        )
        self.plans = plans
        self.currency = plans.billing.currency

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except stripe.APIConnectionError:
            raise StripeUnavailable(what) from None
        except stripe.RateLimitError:
            raise StripeUnavailable(what) from None

    async def create_customer(self, org_id: str, name: str, email: str | None) -> str:
        params: Any = {"name": name, "metadata": {"org_id": org_id}}
        if email:
            params["email"] = email
        customer = await self._call(
            "creating the customer",
            self.client.v1.customers.create_async(
                params=params, options={"idempotency_key": f"customer-{org_id}"}
            ),
        )
        return str(customer.id)

    async def _price(self, lookup_key: str, configured: str, create: dict[str, Any]) -> str:
        if configured:
            return configured
        found = await self._call(
            "finding the price",
            self.client.v1.prices.list_async(
                params={"lookup_keys": [lookup_key], "active": True, "limit": 1}
            ),
        )
        if found.data:
            return str(found.data[0].id)
        price = await self._call(
            "creating the price",
            self.client.v1.prices.create_async(
                params=cast(Any, {"currency": self.currency, "lookup_key": lookup_key, **create}),
                options={"idempotency_key": f"price-{lookup_key}"},
            ),
        )
        return str(price.id)

    async def plan_price(self, plan: Plan) -> str:
        return await self._price(
            plan_lookup_key(plan),
            plan.stripe_price_id,
            {
                "unit_amount": plan.price_cents,
                "recurring": {"interval": plan.interval},
                "product_data": {"name": f"{plan.name} plan", "metadata": {"plan": plan.id}},
                "metadata": {"plan": plan.id},
            },
        )

    async def package_price(self, package: Package) -> str:
        return await self._price(
            package_lookup_key(package),
            package.stripe_price_id,
            {
                "unit_amount": package.price_cents,
                "product_data": {"name": package.name, "metadata": {"package": package.id}},
                "metadata": {"package": package.id},
            },
        )

    async def checkout(self, params: Any) -> tuple[str, str]:
        session = await self._call(
            "creating the checkout", self.client.v1.checkout.sessions.create_async(params=params)
        )
        return str(session.url), str(session.id)

    async def portal(self, customer_id: str, return_url: str) -> str:
        session = await self._call(
            "opening the billing portal",
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            ),
        )
        return str(session.url)

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        found = await self._call(
            "reading the subscription", self.client.v1.subscriptions.retrieve_async(subscription_id)
        )
        result: dict[str, Any] = found.to_dict()
        return result

    async def update_subscription(self, subscription_id: str, params: Any) -> dict[str, Any]:
        updated = await self._call(
            "updating the subscription",
            self.client.v1.subscriptions.update_async(subscription_id, params=params),
        )
        result: dict[str, Any] = updated.to_dict()
        return result

    async def delete_customer(self, customer_id: str) -> bool:
        """Delete a customer for good (Stripe ends its subscriptions with it); False when Stripe no longer
        knows it, so deleting twice is harmless."""
        try:
            await self._call("deleting the customer", self.client.v1.customers.delete_async(customer_id))
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return False
            raise
        return True
