"""The admin console's API: platform totals, users, organisations, agents and alerts (platform admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hutch.admin.console import AdminConsole, Page
from hutch.core.authz import PlatformAdmin
from hutch.core.dependencies import ResourcesDep, UoWDep
from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=200)]
Search = Annotated[str | None, Query(max_length=200, description="Part of a name or email, or an id.")]
ADMIN_ONLY = error_responses(Unauthorized, Forbidden)


class Listing(BaseModel):
    items: list[dict[str, Any]]
    total: int


class AlertOut(BaseModel):
    id: str
    kind: str
    severity: str
    subject: str
    message: str
    org_id: str | None
    occurrences: int
    created_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None


def _listing(page: Page) -> Listing:
    return Listing(items=page.items, total=page.total)


@router.get("/stats", responses=ADMIN_ONLY)
async def stats(_: PlatformAdmin, uow: UoWDep, resources: ResourcesDep) -> dict[str, Any]:
    """Platform totals: users, orgs, agents, conversations, messages, documents, active users (7 and 30
    days), MRR, subscriptions by status, users by plan, dedicated runtimes by status."""
    return await AdminConsole(uow.session, resources.plans).stats()


@router.get("/users", response_model=Listing, responses=ADMIN_ONLY)
async def users(
    _: PlatformAdmin,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Listing:
    """Users, newest first: plan, organisations, agents, messages this month, last active."""
    return _listing(await AdminConsole(uow.session, resources.plans).users(q, skip, limit))


@router.get("/orgs", response_model=Listing, responses=ADMIN_ONLY)
async def orgs(
    _: PlatformAdmin,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Listing:
    """Organisations, newest first: plan, subscription, members, agents, messages this month, balance."""
    return _listing(await AdminConsole(uow.session, resources.plans).orgs(q, skip, limit))


@router.get("/agents", response_model=Listing, responses=ADMIN_ONLY)
async def agents(
    _: PlatformAdmin,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Listing:
    """Agents, newest first: organisation, status, conversations, memories, documents, channels."""
    return _listing(await AdminConsole(uow.session, resources.plans).agents(q, skip, limit))


@router.get("/alerts", response_model=Listing, responses=ADMIN_ONLY)
async def alerts(
    _: PlatformAdmin,
    uow: UoWDep,
    resources: ResourcesDep,
    open_only: Annotated[bool, Query(alias="open")] = True,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Listing:
    """Alerts raised by Hutch (no runtime capacity, runtime failures…), latest first; `open=false` also
    lists acknowledged ones."""
    return _listing(await AdminConsole(uow.session, resources.plans).alerts(open_only, skip, limit))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def acknowledge(alert_id: str, _: PlatformAdmin, uow: UoWDep, resources: ResourcesDep) -> AlertOut:
    """Mark an alert seen; the same situation raises a new alert from then on."""
    return AlertOut(**await AdminConsole(uow.session, resources.plans).acknowledge(alert_id))
