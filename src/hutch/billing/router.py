"""Billing endpoints: plans (public), usage, balance, ledger, packages, subscriptions and purchases."""

from __future__ import annotations

from fastapi import APIRouter

from hutch.billing.dependencies import BillingServiceDep, SubscriptionsDep
from hutch.billing.plans import PlanCatalog
from hutch.billing.schemas import (
    BalanceOut,
    CheckoutOut,
    CheckoutRequest,
    LedgerEntryOut,
    LedgerList,
    PackageList,
    PlanAssignment,
    PlanList,
    PortalOut,
    PortalRequest,
    PurchaseRequest,
    SubscriptionOut,
    UsageOut,
)
from hutch.billing.service import package_out, plan_out
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.http.authz import OrgAdmin, Reader
from hutch.http.dependencies import ResourcesDep, SettingsDep
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["billing"])
AUTHED = error_responses(Unauthorized, Forbidden)


def _plans(resources: Resources) -> PlanCatalog:
    return resources.plans


@router.get("/billing/plans", response_model=PlanList)
async def list_plans(resources: ResourcesDep, settings: SettingsDep) -> PlanList:
    """Every plan with its price, trial and limits (no sign-in needed, for pricing pages)."""
    return PlanList(items=[plan_out(p, settings) for p in _plans(resources).plans])


@router.get("/billing/packages", response_model=PackageList, responses=AUTHED)
async def list_packages(principal: Reader, resources: ResourcesDep, settings: SettingsDep) -> PackageList:
    """Prepaid packages: credit packs and time cards, bought once through Checkout."""
    return PackageList(items=[package_out(p, settings) for p in _plans(resources).packages])


@router.get("/billing/usage", response_model=UsageOut, responses=AUTHED)
async def usage(principal: Reader, billing: BillingServiceDep) -> UsageOut:
    """The org's plan, its limits, and what it used (this month, today)."""
    return await billing.usage(principal)


@router.get("/billing/balance", response_model=BalanceOut, responses=AUTHED)
async def balance(principal: Reader, billing: BillingServiceDep) -> BalanceOut:
    """Prepaid credits (cents) and time (seconds) left."""
    return await billing.balance(principal.org_id)


@router.get("/billing/ledger", response_model=LedgerList, responses=AUTHED)
async def ledger(
    principal: Reader, billing: BillingServiceDep, skip: Skip = 0, limit: Limit = 50
) -> LedgerList:
    """Every purchase, bonus, grant and spend, newest first; the balance is their sum."""
    entries, total = await billing.ledger.entries(principal.org_id, skip, limit)
    return LedgerList(items=[LedgerEntryOut.model_validate(e) for e in entries], total=total)


@router.get("/billing/subscription", response_model=SubscriptionOut, responses=AUTHED)
async def subscription(principal: Reader, billing: BillingServiceDep) -> SubscriptionOut:
    """The org's plan and its subscription state as Stripe last reported it."""
    return await billing.subscription(principal.org_id)


PAYING = error_responses(Unauthorized, Forbidden, NotFound, Conflict, ServiceUnavailable)


@router.post("/billing/checkout", response_model=CheckoutOut, responses=PAYING)
async def checkout(
    body: CheckoutRequest, principal: OrgAdmin, subscriptions: SubscriptionsDep
) -> CheckoutOut:
    """Start a subscription: a Stripe Checkout page for the plan, with its trial. Owners and admins."""
    url, session_id = await subscriptions.checkout_plan(
        principal, body.plan, body.success_url, body.cancel_url
    )
    return CheckoutOut(url=url, session_id=session_id)


@router.post("/billing/purchase", response_model=CheckoutOut, responses=PAYING)
async def purchase(
    body: PurchaseRequest, principal: OrgAdmin, subscriptions: SubscriptionsDep
) -> CheckoutOut:
    """Buy a prepaid package (credits or a time card) on a Stripe Checkout page."""
    url, session_id = await subscriptions.checkout_package(
        principal, body.package_id, body.success_url, body.cancel_url
    )
    return CheckoutOut(url=url, session_id=session_id)


@router.post("/billing/portal", response_model=PortalOut, responses=PAYING)
async def portal(
    principal: OrgAdmin, subscriptions: SubscriptionsDep, body: PortalRequest | None = None
) -> PortalOut:
    """A Stripe Customer Portal link: cards, invoices, cancel."""
    return PortalOut(url=await subscriptions.portal(principal, body.return_url if body else None))


@router.post("/billing/subscription/cancel", response_model=SubscriptionOut, responses=PAYING)
async def cancel_subscription(
    principal: OrgAdmin, billing: BillingServiceDep, subscriptions: SubscriptionsDep
) -> SubscriptionOut:
    """Cancel at the end of the paid period (the plan stays until then)."""
    await subscriptions.cancel(principal)
    return await billing.subscription(principal.org_id)


@router.post("/billing/subscription/change", response_model=SubscriptionOut, responses=PAYING)
async def change_subscription(
    body: PlanAssignment, principal: OrgAdmin, billing: BillingServiceDep, subscriptions: SubscriptionsDep
) -> SubscriptionOut:
    """Move the subscription to another paid plan."""
    await subscriptions.change_plan(principal, body.plan)
    return await billing.subscription(principal.org_id)
