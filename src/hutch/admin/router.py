"""The admin console's API: platform totals, users, organisations, agents and alerts (platform admins)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from hutch.accounts.dependencies import SuspensionsDep
from hutch.accounts.schemas import SuspendRequest, SuspensionOut
from hutch.admin.analytics import Range, margin, org_usage, revenue, usage
from hutch.admin.console import AdminConsole, Page
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.request_context import client_ip
from hutch.http.authz import PlatformAdmin, Reader
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
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


async def admin_console(_: PlatformAdmin, uow: UoWDep, resources: ResourcesDep) -> AdminConsole:
    """The console, for platform admins only."""
    return AdminConsole(uow.session, resources.plans, resources.settings)


Console = Annotated[AdminConsole, Depends(admin_console)]
Days = Annotated[int, Query(ge=1, le=730)]
Timezone = Annotated[str, Query(max_length=64, description="IANA time zone the days are read in.")]


async def analytics_range(
    days: Days = 30,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    tz: Timezone = "UTC",
) -> Range:
    """The last `days` days, or `from`..`to` (both included), with days read in `tz`."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"Unknown time zone {tz!r}; use an IANA name like Europe/Paris.") from None
    if (start is None) != (end is None) or (start is not None and end is not None and end < start):
        raise BadRequest("Give both from and to (to on or after from), or neither and days.")
    return Range.of(days, start, end, tz)


Span = Annotated[Range, Depends(analytics_range)]


@router.get("/stats", responses=ADMIN_ONLY)
async def stats(console: Console) -> dict[str, Any]:
    """Platform totals: users, orgs, agents, conversations, messages, documents, active users (7 and 30
    days), MRR, subscriptions by status, users by plan, dedicated runtimes by status."""
    return await console.stats()


@router.get("/users", response_model=Listing, responses=ADMIN_ONLY)
async def users(
    console: Console,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
    sort: Literal["newest", "email", "last_active", "messages"] = "newest",
) -> Listing:
    """Users: plan, organisations, agents, messages this month, last active."""
    return _listing(await console.users(q, skip, limit, sort))


@router.get("/users/{user_id}", responses=error_responses(Unauthorized, Forbidden, NotFound))
async def user_report(user_id: str, console: Console) -> dict[str, Any]:
    """One user and the organisations they belong to."""
    return await console.user_report(user_id)


@router.get("/orgs", response_model=Listing, responses=ADMIN_ONLY)
async def orgs(
    console: Console,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
    sort: Literal["newest", "name", "members", "messages"] = "newest",
) -> Listing:
    """Organisations: plan, subscription, members, agents, messages this month, balance."""
    return _listing(await console.orgs(q, skip, limit, sort))


@router.get("/orgs/{org_id}", responses=error_responses(Unauthorized, Forbidden, NotFound))
async def org_report(org_id: str, console: Console) -> dict[str, Any]:
    """One organisation: members, agents, this month's usage, a year of revenue."""
    return await console.org_report(org_id)


@router.get("/agents", response_model=Listing, responses=ADMIN_ONLY)
async def agents(
    console: Console,
    q: Search = None,
    skip: Skip = 0,
    limit: Limit = 50,
    sort: Literal["newest", "name", "conversations"] = "newest",
) -> Listing:
    """Agents: organisation, status, conversations, memories, documents, channels."""
    return _listing(await console.agents(q, skip, limit, sort))


@router.get("/alerts", response_model=Listing, responses=ADMIN_ONLY)
async def alerts(
    console: Console,
    open_only: Annotated[bool, Query(alias="open")] = True,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Listing:
    """Alerts raised by Hutch (no runtime capacity, runtime failures…), latest first; `open=false` also
    lists acknowledged ones."""
    return _listing(await console.alerts(open_only, skip, limit))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def acknowledge(alert_id: str, console: Console) -> AlertOut:
    """Mark an alert seen; the same situation raises a new alert from then on."""
    return AlertOut(**await console.acknowledge(alert_id))


SUSPENDING = error_responses(Unauthorized, Forbidden, NotFound, Conflict)


def _suspension(found: Any) -> SuspensionOut:
    return SuspensionOut(id=found.id, suspended_at=found.suspended_at, reason=found.reason)


@router.post("/orgs/{org_id}/suspend", response_model=SuspensionOut, responses=SUSPENDING)
async def suspend_org(
    org_id: str, body: SuspendRequest, request: Request, admin: PlatformAdmin, suspensions: SuspensionsDep
) -> SuspensionOut:
    """Suspend an organisation: its agents answer every channel with a short notice (no model call), its
    API keys and members get 403 naming the suspension, its dedicated runtimes stop. Audited."""
    return _suspension(await suspensions.suspend_org(org_id, body.reason, admin, client_ip(request)))


@router.post("/orgs/{org_id}/reinstate", response_model=SuspensionOut, responses=SUSPENDING)
async def reinstate_org(
    org_id: str, request: Request, admin: PlatformAdmin, suspensions: SuspensionsDep
) -> SuspensionOut:
    """Lift an organisation's suspension: everything works again and its runtimes start. Audited."""
    return _suspension(await suspensions.reinstate_org(org_id, admin, client_ip(request)))


@router.post("/users/{user_id}/suspend", response_model=SuspensionOut, responses=SUSPENDING)
async def suspend_user(
    user_id: str, body: SuspendRequest, request: Request, admin: PlatformAdmin, suspensions: SuspensionsDep
) -> SuspensionOut:
    """Suspend a user: they cannot sign in, refresh a token or use a session (403 naming it). Audited."""
    return _suspension(await suspensions.suspend_user(user_id, body.reason, admin, client_ip(request)))


@router.post("/users/{user_id}/reinstate", response_model=SuspensionOut, responses=SUSPENDING)
async def reinstate_user(
    user_id: str, request: Request, admin: PlatformAdmin, suspensions: SuspensionsDep
) -> SuspensionOut:
    """Lift a user's suspension; their sessions and tokens work again. Audited."""
    return _suspension(await suspensions.reinstate_user(user_id, admin, client_ip(request)))


ANALYTICS = error_responses(BadRequest, Unauthorized, Forbidden)


@router.get("/analytics/revenue", responses=ANALYTICS)
async def revenue_analytics(console: Console, span: Span) -> dict[str, Any]:
    """Revenue per day, transactions and their average, by kind, plan and package, and the MRR movement
    (new, expansion, contraction, churn), over the last `days` days or `from`..`to`, days read in `tz`."""
    return await revenue(console.session, console.plans, span)


@router.get("/analytics/usage", responses=ANALYTICS)
async def usage_analytics(console: Console, span: Span) -> dict[str, Any]:
    """Active users, sessions, messages by channel and per day, tokens and model cost by provider, voice
    hours and average session minutes."""
    return await usage(console.session, span)


@router.get("/analytics/margin", responses=ANALYTICS)
async def margin_analytics(console: Console, span: Span) -> dict[str, Any]:
    """Revenue against cost per organisation, worst margin first (model tokens on platform keys, runtime
    hours at their host's hourly cost, outgoing WhatsApp and Telegram messages at their configured price),
    and costs per channel and per agent."""
    return await margin(console.session, console.settings, span)


usage_router = APIRouter(prefix="/api/v1", tags=["usage"])


@usage_router.get("/usage", responses=error_responses(Unauthorized, Forbidden))
async def my_usage(
    principal: Reader, uow: UoWDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    """Your organisation's last `days` days: messages in and out per channel, messages and tokens per day,
    voice minutes."""
    return await org_usage(uow.session, principal.org_id, days)
