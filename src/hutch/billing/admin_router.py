"""Platform-admin billing: grant credits or time, put an org on a plan by hand, read an org's ledger."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from hutch.billing.dependencies import BillingServiceDep
from hutch.billing.schemas import (
    GrantOut,
    GrantRequest,
    LedgerEntryOut,
    LedgerList,
    OrgPlanOut,
    PlanAssignment,
)
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import BadRequest, Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.request_context import client_ip
from hutch.http.authz import PlatformAdmin

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.post(
    "/admin/orgs/{org_id}/grants",
    status_code=status.HTTP_201_CREATED,
    response_model=GrantOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def grant(
    org_id: str, body: GrantRequest, request: Request, admin: PlatformAdmin, billing: BillingServiceDep
) -> GrantOut:
    """Add prepaid credits and/or seconds to an org (a goodwill gesture, a refund, a deal)."""
    entries = await billing.grant(org_id, body, admin, client_ip(request))
    outs = [LedgerEntryOut.model_validate(e) for e in entries]
    return GrantOut(**outs[0].model_dump(), entries=outs)


@router.put(
    "/admin/orgs/{org_id}/plan",
    response_model=OrgPlanOut,
    responses=error_responses(BadRequest, Unauthorized, Forbidden, NotFound),
)
async def assign_plan(
    org_id: str, body: PlanAssignment, request: Request, admin: PlatformAdmin, billing: BillingServiceDep
) -> OrgPlanOut:
    """Put an org on a plan without Stripe (an invoice paid by hand, a partner, a test account)."""
    org = await billing.assign_plan(org_id, body.plan, admin, client_ip(request))
    return OrgPlanOut(org_id=org.id, plan=org.plan)


@router.get(
    "/admin/orgs/{org_id}/ledger",
    response_model=LedgerList,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def org_ledger(
    org_id: str,
    _: PlatformAdmin,
    billing: BillingServiceDep,
    skip: Skip = 0,
    limit: Limit = 50,
) -> LedgerList:
    """An org's purchases, bonuses, grants and spends, newest first (what `GET /billing/ledger` shows its
    members)."""
    entries, total = await billing.org_ledger(org_id, skip, limit)
    return LedgerList(items=[LedgerEntryOut.model_validate(e) for e in entries], total=total)
