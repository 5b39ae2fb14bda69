"""Billing endpoints: plans (public), usage, balance, ledger, packages and subscription state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hutch.billing.plans import PlanCatalog
from hutch.billing.schemas import (
    BalanceOut,
    LedgerEntryOut,
    LedgerList,
    PackageList,
    PlanList,
    SubscriptionOut,
    UsageOut,
)
from hutch.billing.service import BillingService, package_out, plan_out
from hutch.core.authz import Reader
from hutch.core.dependencies import ResourcesDep, SettingsDep, UoWDep
from hutch.core.errors import Forbidden, Unauthorized, error_responses
from hutch.db.engine import UnitOfWork
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["billing"])
Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=200)]
AUTHED = error_responses(Unauthorized, Forbidden)


def billing(uow: UnitOfWork, resources: Resources) -> BillingService:
    return BillingService(uow, resources.plans, resources.settings)


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
async def usage(principal: Reader, uow: UoWDep, resources: ResourcesDep) -> UsageOut:
    """The org's plan, its limits, and what it used (this month, today)."""
    return await billing(uow, resources).usage(principal)


@router.get("/billing/balance", response_model=BalanceOut, responses=AUTHED)
async def balance(principal: Reader, uow: UoWDep, resources: ResourcesDep) -> BalanceOut:
    """Prepaid credits (cents) and time (seconds) left."""
    return await billing(uow, resources).balance(principal.org_id)


@router.get("/billing/ledger", response_model=LedgerList, responses=AUTHED)
async def ledger(
    principal: Reader, uow: UoWDep, resources: ResourcesDep, skip: Skip = 0, limit: Limit = 50
) -> LedgerList:
    """Every purchase, bonus, grant and spend, newest first; the balance is their sum."""
    entries, total = await billing(uow, resources).ledger.entries(principal.org_id, skip, limit)
    return LedgerList(items=[LedgerEntryOut.model_validate(e) for e in entries], total=total)


@router.get("/billing/subscription", response_model=SubscriptionOut, responses=AUTHED)
async def subscription(principal: Reader, uow: UoWDep, resources: ResourcesDep) -> SubscriptionOut:
    """The org's plan and its subscription state as Stripe last reported it."""
    return await billing(uow, resources).subscription(principal.org_id)
