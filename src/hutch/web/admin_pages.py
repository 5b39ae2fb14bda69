"""The admin console for platform admins: overview, users, organisations, agents, alerts, bot-factory
accounts and runtime hosts. Same console and analytics as ``/api/v1/admin``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hutch.admin.analytics import Range, revenue, usage
from hutch.admin.console import AdminConsole
from hutch.botfactory.models import AccountStatus
from hutch.botfactory.service import CreatorAccounts
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.runtimes.service import RuntimeService
from hutch.web import charts
from hutch.web.deps import AdminViewerDep, page

router = APIRouter(prefix="/admin", include_in_schema=False)
PAGE = 25
Search = Annotated[str, Query(max_length=200)]
Skip = Annotated[int, Query(ge=0)]
HIDDEN_COLUMNS = {"id"}


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _days(span: Range) -> list[str]:
    first = span.start.date()
    return [(first + timedelta(days=i)).isoformat() for i in range((span.end - span.start).days)]


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep, days: int = 30
) -> HTMLResponse:
    days = min(max(days, 7), 365)
    console = AdminConsole(uow.session, resources.plans, resources.settings)
    stats = await console.stats()
    span = Range.of(days, None, None, "UTC")
    money, traffic = await revenue(uow.session, resources.plans, span), await usage(uow.session, span)
    labels = _days(span)
    index = {label: i for i, label in enumerate(labels)}
    daily_revenue, daily_messages = [0.0] * len(labels), [0.0] * len(labels)
    for row in money["daily"]:
        if (i := index.get(_day(row["day"]))) is not None:
            daily_revenue[i] = row["revenue_cents"] / 100
    for row in traffic["daily_messages"]:
        if (i := index.get(_day(row["day"]))) is not None:
            daily_messages[i] = row["messages"]
    channels = traffic["messages_by_channel"]
    x, daily = charts.weekly_when_long(labels, {"Revenue": daily_revenue, "Messages": daily_messages}, days)
    graphs = {
        "revenue": charts.bars(
            "Revenue per day ($)" if days <= 90 else "Revenue per week ($)",
            x,
            {"Revenue": daily["Revenue"]},
            f"Revenue per day: {_money(money['revenue_cents'])} over {days} days",
        ),
        "messages": charts.line(
            "Messages per day" if days <= 90 else "Messages per week",
            x,
            {"Messages": daily["Messages"]},
            charts.describe(sum(daily_messages), "messages", days),
        ),
        "channels": charts.bars(
            "Messages by channel",
            list(channels) or ["none"],
            {"Messages": list(channels.values()) or [0]},
            "Messages by channel: " + (", ".join(f"{k} {v:,}" for k, v in channels.items()) or "none"),
        ),
    }
    cards = [
        ("MRR", _money(stats["mrr_cents"])),
        (f"Revenue, {days} days", _money(money["revenue_cents"])),
        ("Active users, 30 days", f"{stats.get('active_users_30d', 0):,}"),
        ("Users", f"{stats['users']:,}"),
        ("Organisations", f"{stats['orgs']:,}"),
        ("Agents", f"{stats['agents']:,}"),
        ("Messages", f"{stats['messages']:,}"),
        ("Open alerts", f"{(await console.alerts(True, 0, 1)).total:,}"),
    ]
    return page(request, "admin/overview.html", found, section="admin", cards=cards, graphs=graphs, days=days)


def _columns(items: list[dict[str, Any]]) -> list[str]:
    if not items:
        return []
    return [k for k, v in items[0].items() if k not in HIDDEN_COLUMNS and not isinstance(v, dict | list)][:8]


LISTINGS = {"users": "Users", "orgs": "Organisations", "agents": "Agents"}


async def _listing(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    kind: str,
    q: str,
    skip: int,
) -> HTMLResponse:
    """One of the console's tables (users, organisations, agents), searched and a page at a time."""
    console = AdminConsole(uow.session, resources.plans, resources.settings)
    listed = await getattr(console, kind)(q or None, skip, PAGE)
    return page(
        request,
        "admin/listing.html",
        found,
        section="admin",
        kind=kind,
        title=LISTINGS[kind],
        items=listed.items,
        columns=_columns(listed.items),
        total=listed.total,
        q=q,
        skip=skip,
        size=PAGE,
    )


@router.get("/users", response_class=HTMLResponse)
async def users(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = "",
    skip: Skip = 0,
) -> HTMLResponse:
    return await _listing(request, found, uow, resources, "users", q, skip)


@router.get("/orgs", response_class=HTMLResponse)
async def orgs(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = "",
    skip: Skip = 0,
) -> HTMLResponse:
    return await _listing(request, found, uow, resources, "orgs", q, skip)


@router.get("/agents", response_class=HTMLResponse)
async def agents(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    q: Search = "",
    skip: Skip = 0,
) -> HTMLResponse:
    return await _listing(request, found, uow, resources, "agents", q, skip)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    skip: Skip = 0,
    show: str = "open",
) -> HTMLResponse:
    console = AdminConsole(uow.session, resources.plans, resources.settings)
    listed = await console.alerts(show != "all", skip, PAGE)
    return page(
        request,
        "admin/alerts.html",
        found,
        section="admin",
        alerts=listed.items,
        total=listed.total,
        skip=skip,
        size=PAGE,
        show=show,
    )


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    await AdminConsole(uow.session, resources.plans, resources.settings).acknowledge(alert_id)
    return RedirectResponse("/admin/alerts", status_code=303)


@router.get("/creator-accounts", response_class=HTMLResponse)
async def creator_accounts(
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    pool = CreatorAccounts(uow.session, resources.secret_box)
    return page(
        request,
        "admin/creator_accounts.html",
        found,
        section="admin",
        accounts=await pool.list(),
        made=await pool.made_today(),
    )


@router.post("/creator-accounts/{account_id}/status")
async def set_account_status(
    account_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    status: Annotated[str, Form(pattern="^(active|locked)$")],
) -> Response:
    await CreatorAccounts(uow.session, resources.secret_box).update(account_id, status=AccountStatus(status))
    return RedirectResponse("/admin/creator-accounts", status_code=303)


@router.get("/runtime-hosts", response_class=HTMLResponse)
async def runtime_hosts(
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    hosts = await RuntimeService.of(uow, resources).hosts()
    return page(request, "admin/hosts.html", found, section="admin", hosts=hosts)
