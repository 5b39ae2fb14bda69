"""The admin console for platform admins: overview, users, organisations, agents, alerts, bot-factory
accounts, runtime hosts, deletions, the audit log and the margins. Same console, analytics and services as
``/api/v1/admin``: every change is asked about first on a page of its own (a GET that changes nothing), then
made by a POST through the service the API route uses, which writes the audit entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hutch.accounts.dependencies import SuspensionsDep
from hutch.accounts.schemas import SuspendRequest
from hutch.admin.analytics import Range, margin, revenue, usage
from hutch.admin.console import AdminConsole
from hutch.audit.repository import AuditFilter, AuditRepository, day_range
from hutch.billing.dependencies import BillingServiceDep
from hutch.billing.schemas import GrantRequest
from hutch.botfactory.models import AccountStatus
from hutch.botfactory.schemas import CreatorAccountCreate
from hutch.botfactory.service import CreatorAccounts, NewAccount
from hutch.core.bounds import Skip
from hutch.core.errors import HutchError
from hutch.core.request_context import client_ip
from hutch.deletion.deletions import DeletionPreview, Deletions
from hutch.deletion.dependencies import DeletionsDep
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.runtimes.dependencies import RuntimeHostsDep
from hutch.runtimes.hosts import NewHost
from hutch.runtimes.schemas import RuntimeHostCreate
from hutch.web import charts
from hutch.web.deps import AdminViewerDep, Viewer, attempt, error_text, field_errors, page

router = APIRouter(prefix="/admin", include_in_schema=False)
T = TypeVar("T")
PAGE = 25
Search = Annotated[str, Query(max_length=200)]
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
            f"{sum(daily_messages):,.0f} messages over the last {days} days",
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
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep, done: str = ""
) -> HTMLResponse:
    pool = CreatorAccounts(uow.session, resources.secret_box)
    return page(
        request,
        "admin/creator_accounts.html",
        found,
        section="admin",
        accounts=await pool.list(),
        made=await pool.made_today(),
        flash=done[:200] or None,
    )


@router.get("/runtime-hosts", response_class=HTMLResponse)
async def runtime_hosts(
    request: Request, found: AdminViewerDep, hosts: RuntimeHostsDep, done: str = ""
) -> HTMLResponse:
    listed = await hosts.list()
    return page(request, "admin/hosts.html", found, section="admin", hosts=listed, flash=done[:200] or None)


# --- actions: each asks first (a page), then acts on POST through the API's services -----------------


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | number | textarea | select | hidden
    options: tuple[tuple[str, str], ...] = ()
    value: str = ""
    hint: str = ""
    required: bool = True
    maxlength: int = 500


@dataclass(frozen=True)
class Confirm:
    """A confirmation step: what will happen, the fields it needs, and where the answer goes."""

    title: str
    heading: str
    action: str
    button: str
    back: str
    lines: list[str] = field(default_factory=list)
    intro: str = ""
    fields: tuple[Field, ...] = ()
    danger: bool = False


def ask(
    request: Request,
    found: Viewer,
    confirm: Confirm,
    *,
    status_code: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    return page(
        request,
        "admin/confirm.html",
        found,
        status_code,
        section="admin",
        confirm=confirm,
        error=error,
        errors=errors or {},
        values=values or {},
    )


async def act(
    request: Request,
    found: Viewer,
    uow: UoWDep,
    action: Awaitable[T],
    describe: Callable[[], Awaitable[Confirm]],
    values: dict[str, str] | None = None,
) -> T | HTMLResponse:
    """Do it; a refusal (409, 400, ...) shows the confirmation again with the reason, nothing changed."""
    done = await attempt(uow, action)
    if isinstance(done, HutchError):
        return ask(
            request,
            found,
            await describe(),
            status_code=done.status_code,
            error=error_text(done),
            values=values,
        )
    return done


def invalid(
    request: Request,
    found: Viewer,
    confirm: Confirm,
    exc: ValidationError,
    values: dict[str, str],
    names: dict[str, str],
) -> HTMLResponse:
    """The form's fields in error, each next to its field (``names``: the API's field → the form's)."""
    errors = {names.get(k, k): v for k, v in field_errors(exc).items()}
    if "form" in errors or not set(errors) & {f.name for f in confirm.fields}:
        return ask(request, found, confirm, status_code=422, error=next(iter(errors.values())), values=values)
    return ask(request, found, confirm, status_code=422, errors=errors, values=values)


def back_to(path: str, flash: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'done': flash})}", status_code=303)


FOR_GOOD = "This cannot be undone."
PLAN_KEYS = ("orgs", "users_to_delete")  # what a deletion decided to remove, kept in its report
REASON = Field(
    "reason", "Reason", "textarea", hint="Kept in the audit log; the organisation's members see it."
)


# --- organisations --------------------------------------------------------------------------------------


@router.get("/orgs/{org_id}", response_class=HTMLResponse)
async def org_page(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    billing: BillingServiceDep,
    skip: Skip = 0,
    done: str = "",
) -> HTMLResponse:
    report = await AdminConsole(uow.session, resources.plans, resources.settings).org_report(org_id)
    entries, total = await billing.org_ledger(org_id, skip, PAGE)
    return page(
        request,
        "admin/org.html",
        found,
        section="admin",
        org=report,
        ledger=entries,
        total=total,
        skip=skip,
        size=PAGE,
        flash=done[:200] or None,
    )


async def _org(uow: UoWDep, resources: ResourcesDep, org_id: str) -> dict[str, Any]:
    return await AdminConsole(uow.session, resources.plans, resources.settings).org_report(org_id)


def _suspend_org_confirm(org: dict[str, Any]) -> Confirm:
    return Confirm(
        title=f"Suspend {org['name']}",
        heading="What a suspension does",
        action=f"/admin/orgs/{org['id']}/suspend",
        button="Suspend organisation",
        back=f"/admin/orgs/{org['id']}",
        lines=[
            "Its agents answer every channel with a short notice, without asking a model.",
            "Its API keys and its members get 403 with the reason; their own account pages stay open.",
            "Its dedicated runtimes are stopped (their files kept) until it is reinstated.",
        ],
        fields=(REASON,),
        danger=True,
    )


@router.get("/orgs/{org_id}/suspend", response_class=HTMLResponse)
async def suspend_org_form(
    request: Request, org_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _suspend_org_confirm(await _org(uow, resources, org_id)))


@router.post("/orgs/{org_id}/suspend", response_class=HTMLResponse)
async def suspend_org(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    suspensions: SuspensionsDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    async def describe() -> Confirm:
        return _suspend_org_confirm(await _org(uow, resources, org_id))

    try:
        body = SuspendRequest(reason=reason.strip())
    except ValidationError as exc:
        return invalid(request, found, await describe(), exc, {"reason": reason}, {})
    ip = client_ip(request)
    outcome = await act(
        request,
        found,
        uow,
        suspensions.suspend_org(org_id, body.reason, found.principal, ip),
        describe,
        {"reason": reason},
    )
    return outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/orgs/{org_id}", "Suspended.")


def _reinstate_org_confirm(org: dict[str, Any]) -> Confirm:
    return Confirm(
        title=f"Reinstate {org['name']}",
        heading="What reinstating does",
        intro=f"Suspended for: {org.get('suspension_reason') or 'no reason given'}.",
        action=f"/admin/orgs/{org['id']}/reinstate",
        button="Reinstate organisation",
        back=f"/admin/orgs/{org['id']}",
        lines=[
            "Its agents answer again, its API keys and members get in again.",
            "Its dedicated runtimes are started again.",
        ],
    )


@router.get("/orgs/{org_id}/reinstate", response_class=HTMLResponse)
async def reinstate_org_form(
    request: Request, org_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _reinstate_org_confirm(await _org(uow, resources, org_id)))


@router.post("/orgs/{org_id}/reinstate", response_class=HTMLResponse)
async def reinstate_org(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    suspensions: SuspensionsDep,
) -> Response:
    async def describe() -> Confirm:
        return _reinstate_org_confirm(await _org(uow, resources, org_id))

    ip = client_ip(request)
    outcome = await act(request, found, uow, suspensions.reinstate_org(org_id, found.principal, ip), describe)
    return outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/orgs/{org_id}", "Reinstated.")


def _plan_confirm(org: dict[str, Any], resources: ResourcesDep) -> Confirm:
    plans = tuple((p.id, f"{p.name} ({_money(p.price_cents)} a {p.interval})") for p in resources.plans.plans)
    return Confirm(
        title=f"Change the plan of {org['name']}",
        heading="Put it on a plan by hand",
        intro=f"It is on {org['plan']} now (subscription: {org['subscription']}).",
        action=f"/admin/orgs/{org['id']}/plan",
        button="Change plan",
        back=f"/admin/orgs/{org['id']}",
        lines=[
            "Its limits change at once; nothing is charged through Stripe.",
            "A Stripe subscription it has is left as it is: its next renewal may set the plan again.",
        ],
        fields=(Field("plan", "Plan", "select", options=plans, value=org["plan"]),),
    )


@router.get("/orgs/{org_id}/plan", response_class=HTMLResponse)
async def plan_form(
    request: Request, org_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _plan_confirm(await _org(uow, resources, org_id), resources))


@router.post("/orgs/{org_id}/plan", response_class=HTMLResponse)
async def change_plan(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    billing: BillingServiceDep,
    plan: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def describe() -> Confirm:
        return _plan_confirm(await _org(uow, resources, org_id), resources)

    ip = client_ip(request)
    outcome = await act(
        request, found, uow, billing.assign_plan(org_id, plan, found.principal, ip), describe, {"plan": plan}
    )
    return (
        outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/orgs/{org_id}", f"Now on {plan}.")
    )


def _grant_confirm(org: dict[str, Any]) -> Confirm:
    return Confirm(
        title=f"Grant credits or time to {org['name']}",
        heading="Add to its prepaid balance",
        intro=f"Its balance: {_money(org['credits_cents'])} of credits, {org['seconds'] // 60:,} minutes.",
        action=f"/admin/orgs/{org['id']}/grant",
        button="Grant",
        back=f"/admin/orgs/{org['id']}",
        lines=["Written to its ledger as a grant, with the reason, and to the audit log."],
        fields=(
            Field(
                "credits",
                "Credits ($)",
                hint="Dollars, e.g. 10 or 2.50; leave empty for none.",
                required=False,
            ),
            Field("minutes", "Time (minutes)", "number", hint="Leave empty for none.", required=False),
            Field("reason", "Reason", "textarea", hint="Shown in its ledger and kept in the audit log."),
        ),
    )


def _grant_request(credits: str, minutes: str, reason: str) -> GrantRequest | dict[str, str]:
    """The form in the API's terms, or what is wrong with it."""
    errors: dict[str, str] = {}
    cents: int | None = None
    credits = credits.strip().removeprefix("$")
    if credits:
        try:
            amount = Decimal(credits) * 100
            if amount != amount.to_integral_value() or amount <= 0:
                raise InvalidOperation
            cents = int(amount)
        except InvalidOperation:
            errors["credits"] = "Give an amount in dollars, like 10 or 2.50."
    seconds: int | None = None
    if minutes.strip():
        if not minutes.strip().isdigit() or int(minutes) <= 0:
            errors["minutes"] = "Give a whole number of minutes."
        else:
            seconds = int(minutes) * 60
    if errors:
        return errors
    try:
        return GrantRequest(credits_cents=cents, seconds=seconds, reason=reason.strip())
    except ValidationError as exc:
        names = {"credits_cents": "credits", "seconds": "minutes"}
        found = {names.get(k, k): v for k, v in field_errors(exc).items()}
        if "form" in found or "" in found:
            return {"credits": "Give credits, time or both."}
        return found


@router.get("/orgs/{org_id}/grant", response_class=HTMLResponse)
async def grant_form(
    request: Request, org_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _grant_confirm(await _org(uow, resources, org_id)))


@router.post("/orgs/{org_id}/grant", response_class=HTMLResponse)
async def grant(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    billing: BillingServiceDep,
    credits: Annotated[str, Form(max_length=20)] = "",
    minutes: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    async def describe() -> Confirm:
        return _grant_confirm(await _org(uow, resources, org_id))

    values = {"credits": credits, "minutes": minutes, "reason": reason}
    body = _grant_request(credits, minutes, reason)
    if isinstance(body, dict):
        return ask(request, found, await describe(), status_code=422, errors=body, values=values)
    ip = client_ip(request)
    outcome = await act(
        request, found, uow, billing.grant(org_id, body, found.principal, ip), describe, values
    )
    return outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/orgs/{org_id}", "Granted.")


def _preview_lines(preview: DeletionPreview) -> list[str]:
    lines = []
    for org in preview.orgs:
        lines.append(
            f"The organisation {org.name}: {org.agents} agent(s), {org.conversations} conversation(s) with "
            f"their messages and memories, {org.documents} document(s), its API keys and ledger."
        )
        lines.append(
            f"Outside this service: {org.telegram_bots} Telegram bot webhook(s) removed, {org.runtimes} "
            f"dedicated runtime(s) destroyed, "
            + (
                "its Stripe customer deleted (its subscription ends)."
                if org.stripe_customer
                else "no Stripe customer."
            )
        )
    if preview.users:
        lines.append("These accounts, left in no organisation: " + ", ".join(preview.users) + ".")
    if preview.kept:
        lines.append(
            "Kept (they belong elsewhere too, or run the platform): " + ", ".join(preview.kept) + "."
        )
    return lines


async def _delete_org_confirm(uow: UoWDep, resources: ResourcesDep, org_id: str) -> Confirm:
    org = await _org(uow, resources, org_id)
    preview = await Deletions.of(uow, resources).preview_org(org_id)
    return Confirm(
        title=f"Delete {org['name']} for good",
        heading="What goes",
        intro=f"Its data is exported first (a ZIP kept for you for 7 days), then deleted. {FOR_GOOD}",
        action=f"/admin/orgs/{org_id}/delete",
        button="Delete organisation for good",
        back=f"/admin/orgs/{org_id}",
        lines=_preview_lines(preview),
        fields=(Field("confirm", f"Type the organisation's name, {org['name']}, to confirm", maxlength=200),),
        danger=True,
    )


@router.get("/orgs/{org_id}/delete", response_class=HTMLResponse)
async def delete_org_form(
    request: Request, org_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, await _delete_org_confirm(uow, resources, org_id))


@router.post("/orgs/{org_id}/delete", response_class=HTMLResponse)
async def delete_org(
    request: Request,
    org_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    deletions: DeletionsDep,
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    org = await _org(uow, resources, org_id)
    if confirm.strip() != org["name"]:
        return ask(
            request,
            found,
            await _delete_org_confirm(uow, resources, org_id),
            status_code=422,
            errors={"confirm": "Type the name exactly as shown."},
            values={"confirm": confirm},
        )
    deletion = await deletions.delete_org(org_id, found.principal, client_ip(request))
    return RedirectResponse(f"/admin/deletions/{deletion.id}", status_code=303)


# --- users ----------------------------------------------------------------------------------------------


async def _user(uow: UoWDep, resources: ResourcesDep, user_id: str) -> dict[str, Any]:
    return await AdminConsole(uow.session, resources.plans, resources.settings).user_report(user_id)


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_page(
    request: Request,
    user_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    done: str = "",
) -> HTMLResponse:
    report = await _user(uow, resources, user_id)
    return page(request, "admin/user.html", found, section="admin", user=report, flash=done[:200] or None)


def _suspend_user_confirm(user: dict[str, Any]) -> Confirm:
    return Confirm(
        title=f"Suspend {user['email']}",
        heading="What a suspension does",
        action=f"/admin/users/{user['id']}/suspend",
        button="Suspend user",
        back=f"/admin/users/{user['id']}",
        lines=[
            "They cannot sign in, refresh a token or use a session they have: each answers with the reason.",
            "Their sessions are kept, so reinstating gives everything back.",
        ],
        fields=(Field("reason", "Reason", "textarea", hint="Kept in the audit log; they see it."),),
        danger=True,
    )


@router.get("/users/{user_id}/suspend", response_class=HTMLResponse)
async def suspend_user_form(
    request: Request, user_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _suspend_user_confirm(await _user(uow, resources, user_id)))


@router.post("/users/{user_id}/suspend", response_class=HTMLResponse)
async def suspend_user(
    request: Request,
    user_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    suspensions: SuspensionsDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    async def describe() -> Confirm:
        return _suspend_user_confirm(await _user(uow, resources, user_id))

    try:
        body = SuspendRequest(reason=reason.strip())
    except ValidationError as exc:
        return invalid(request, found, await describe(), exc, {"reason": reason}, {})
    ip = client_ip(request)
    outcome = await act(
        request,
        found,
        uow,
        suspensions.suspend_user(user_id, body.reason, found.principal, ip),
        describe,
        {"reason": reason},
    )
    return outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/users/{user_id}", "Suspended.")


def _reinstate_user_confirm(user: dict[str, Any]) -> Confirm:
    return Confirm(
        title=f"Reinstate {user['email']}",
        heading="What reinstating does",
        intro=f"Suspended for: {user.get('suspension_reason') or 'no reason given'}.",
        action=f"/admin/users/{user['id']}/reinstate",
        button="Reinstate user",
        back=f"/admin/users/{user['id']}",
        lines=["They can sign in again; their sessions and tokens work again."],
    )


@router.get("/users/{user_id}/reinstate", response_class=HTMLResponse)
async def reinstate_user_form(
    request: Request, user_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, _reinstate_user_confirm(await _user(uow, resources, user_id)))


@router.post("/users/{user_id}/reinstate", response_class=HTMLResponse)
async def reinstate_user(
    request: Request,
    user_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    suspensions: SuspensionsDep,
) -> Response:
    async def describe() -> Confirm:
        return _reinstate_user_confirm(await _user(uow, resources, user_id))

    ip = client_ip(request)
    outcome = await act(
        request, found, uow, suspensions.reinstate_user(user_id, found.principal, ip), describe
    )
    return outcome if isinstance(outcome, HTMLResponse) else back_to(f"/admin/users/{user_id}", "Reinstated.")


async def _delete_user_confirm(uow: UoWDep, resources: ResourcesDep, user_id: str) -> Confirm:
    user = await _user(uow, resources, user_id)
    preview = await Deletions.of(uow, resources).preview_user(user_id)
    lines = _preview_lines(preview)
    if not preview.orgs:
        lines.insert(0, "No organisation: they own none alone (the others keep their data).")
    return Confirm(
        title=f"Delete {user['email']} for good",
        heading="What goes",
        intro=f"Their data is exported first (a ZIP kept for you for 7 days), then deleted. {FOR_GOOD}",
        action=f"/admin/users/{user_id}/delete",
        button="Delete user for good",
        back=f"/admin/users/{user_id}",
        lines=lines,
        fields=(Field("confirm", f"Type their email, {user['email']}, to confirm", maxlength=320),),
        danger=True,
    )


@router.get("/users/{user_id}/delete", response_class=HTMLResponse)
async def delete_user_form(
    request: Request, user_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return ask(request, found, await _delete_user_confirm(uow, resources, user_id))


@router.post("/users/{user_id}/delete", response_class=HTMLResponse)
async def delete_user(
    request: Request,
    user_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    deletions: DeletionsDep,
    confirm: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    user = await _user(uow, resources, user_id)

    async def describe() -> Confirm:
        return await _delete_user_confirm(uow, resources, user_id)

    if confirm.strip().lower() != user["email"].lower():
        return ask(
            request,
            found,
            await describe(),
            status_code=422,
            errors={"confirm": "Type the email exactly as shown."},
            values={"confirm": confirm},
        )
    outcome = await act(
        request,
        found,
        uow,
        deletions.delete_user(user_id, found.principal, client_ip(request)),
        describe,
        {"confirm": confirm},
    )
    if isinstance(outcome, HTMLResponse):
        return outcome
    return RedirectResponse(f"/admin/deletions/{outcome.id}", status_code=303)


# --- deletions ------------------------------------------------------------------------------------------


@router.get("/deletions", response_class=HTMLResponse)
async def deletions_page(
    request: Request, found: AdminViewerDep, deletions: DeletionsDep, skip: Skip = 0
) -> HTMLResponse:
    items, total = await deletions.page(skip, PAGE)
    return page(
        request,
        "admin/deletions.html",
        found,
        section="admin",
        deletions=items,
        total=total,
        skip=skip,
        size=PAGE,
    )


@router.get("/deletions/{deletion_id}", response_class=HTMLResponse)
async def deletion_page(
    request: Request, deletion_id: str, found: AdminViewerDep, deletions: DeletionsDep, done: str = ""
) -> HTMLResponse:
    deletion = await deletions.get(deletion_id)
    steps = [(step, outcome) for step, outcome in deletion.report.items() if step not in PLAN_KEYS]
    return page(
        request,
        "admin/deletion.html",
        found,
        section="admin",
        d=deletion,
        steps=steps,
        flash=done[:200] or None,
    )


def _steps_done(report: dict[str, Any]) -> list[str]:
    return [step for step in report if step not in PLAN_KEYS]


def _retry_confirm(deletion: Any) -> Confirm:
    return Confirm(
        title=f"Retry the deletion of {deletion.subject_label}",
        heading="What a retry does",
        intro=f"It stopped at: {deletion.error or 'no error recorded'}.",
        action=f"/admin/deletions/{deletion.id}/retry",
        button="Retry deletion",
        back=f"/admin/deletions/{deletion.id}",
        lines=[
            "It runs again from the step it stopped at: nothing already done is done twice.",
            f"Done so far: {', '.join(_steps_done(deletion.report)) or 'nothing'}.",
        ],
        danger=True,
    )


@router.get("/deletions/{deletion_id}/retry", response_class=HTMLResponse)
async def retry_form(
    request: Request, deletion_id: str, found: AdminViewerDep, deletions: DeletionsDep
) -> HTMLResponse:
    return ask(request, found, _retry_confirm(await deletions.get(deletion_id)))


@router.post("/deletions/{deletion_id}/retry", response_class=HTMLResponse)
async def retry_deletion(
    request: Request, deletion_id: str, found: AdminViewerDep, uow: UoWDep, deletions: DeletionsDep
) -> Response:
    async def describe() -> Confirm:
        return _retry_confirm(await deletions.get(deletion_id))

    outcome = await act(
        request, found, uow, deletions.retry(deletion_id, found.principal, client_ip(request)), describe
    )
    if isinstance(outcome, HTMLResponse):
        return outcome
    return back_to(f"/admin/deletions/{deletion_id}", "Running again.")


# --- the bot factory's creator accounts -----------------------------------------------------------------

NEW_ACCOUNT = Confirm(
    title="Add a creator account",
    heading="A Telegram account that asks @BotFather for bots",
    intro=(
        "Log the account in with hutch botfactory add-account to get its session, or paste a Telethon "
        "StringSession here. The api_hash and the session are stored encrypted and never shown again."
    ),
    action="/admin/creator-accounts",
    button="Add account",
    back="/admin/creator-accounts",
    fields=(
        Field("phone", "Phone number", hint="International format, e.g. +14155550100.", maxlength=20),
        Field("api_id", "api_id", "number", hint="From my.telegram.org.", maxlength=12),
        Field("api_hash", "api_hash", maxlength=64),
        Field("session", "Session", "textarea", maxlength=2000),
        Field(
            "priority",
            "Priority",
            "number",
            value="0",
            hint="Higher is used first (-100 to 100).",
            maxlength=4,
        ),
        Field("daily_cap", "Bots a day", "number", value="5", hint="At most 50.", maxlength=2),
    ),
)


@router.get("/creator-accounts/new", response_class=HTMLResponse)
async def new_creator_account(request: Request, found: AdminViewerDep) -> HTMLResponse:
    return ask(request, found, NEW_ACCOUNT)


@router.post("/creator-accounts", response_class=HTMLResponse)
async def add_creator_account(
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    form = await request.form()
    values = {f.name: str(form.get(f.name, "")).strip() for f in NEW_ACCOUNT.fields}
    try:
        body = CreatorAccountCreate(**{k: v for k, v in values.items() if v != ""})
    except ValidationError as exc:
        return invalid(request, found, NEW_ACCOUNT, exc, values, {})

    async def describe() -> Confirm:
        return NEW_ACCOUNT

    pool = CreatorAccounts(uow.session, resources.secret_box)
    added = await act(
        request,
        found,
        uow,
        pool.add(NewAccount(**body.model_dump()), found.principal, client_ip(request)),
        describe,
        values,
    )
    if isinstance(added, HTMLResponse):
        return added
    return back_to("/admin/creator-accounts", f"Added {body.phone}.")


def _account_status_confirm(account: Any, status: str) -> Confirm:
    pause = status == "locked"
    return Confirm(
        title=f"{'Pause' if pause else 'Resume'} {account.phone}",
        heading="Set it aside" if pause else "Use it again",
        action=f"/admin/creator-accounts/{account.id}/status",
        button="Pause account" if pause else "Resume account",
        back="/admin/creator-accounts",
        lines=(
            ["It makes no new bots until you resume it; the bots it made keep working."]
            if pause
            else ["It makes bots again (its last error and rest are cleared)."]
        ),
        fields=(Field("status", "Status", "hidden", value=status),),
    )


@router.get("/creator-accounts/{account_id}/status", response_class=HTMLResponse)
async def account_status_form(
    request: Request,
    account_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    status: Annotated[str, Query(pattern="^(active|locked)$")] = "locked",
) -> HTMLResponse:
    account = await CreatorAccounts(uow.session, resources.secret_box).get(account_id)
    return ask(request, found, _account_status_confirm(account, status))


@router.post("/creator-accounts/{account_id}/status")
async def set_account_status(
    request: Request,
    account_id: str,
    found: AdminViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    status: Annotated[str, Form(pattern="^(active|locked)$")],
) -> Response:
    await CreatorAccounts(uow.session, resources.secret_box).update(
        account_id, status=AccountStatus(status), actor=found.principal, ip=client_ip(request)
    )
    return back_to("/admin/creator-accounts", "Paused." if status == "locked" else "Resumed.")


def _remove_account_confirm(account: Any) -> Confirm:
    return Confirm(
        title=f"Remove {account.phone}",
        heading="Take it out of the pool",
        action=f"/admin/creator-accounts/{account.id}/remove",
        button="Remove account",
        back="/admin/creator-accounts",
        lines=[
            "Its session and api_hash are deleted from this service; the Telegram account stays yours.",
            f"The {account.created_bots} bot(s) it made keep working: they belong to their agents.",
        ],
        danger=True,
    )


@router.get("/creator-accounts/{account_id}/remove", response_class=HTMLResponse)
async def remove_account_form(
    request: Request, account_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    account = await CreatorAccounts(uow.session, resources.secret_box).get(account_id)
    return ask(request, found, _remove_account_confirm(account))


@router.post("/creator-accounts/{account_id}/remove")
async def remove_account(
    request: Request, account_id: str, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    await CreatorAccounts(uow.session, resources.secret_box).delete(
        account_id, found.principal, client_ip(request)
    )
    return back_to("/admin/creator-accounts", "Removed.")


# --- runtime hosts --------------------------------------------------------------------------------------

NEW_HOST = Confirm(
    title="Add a runtime host",
    heading="A Docker engine or an EC2 region for dedicated runtimes",
    intro="Placement fills the emptiest enabled host with room.",
    action="/admin/runtime-hosts",
    button="Add host",
    back="/admin/runtime-hosts",
    fields=(
        Field("name", "Name", hint="Unique; letters, digits, dots, dashes.", maxlength=100),
        Field("driver", "Driver", "select", options=(("docker", "Docker"), ("ec2", "EC2")), value="docker"),
        Field(
            "address",
            "Address",
            hint="Docker: unix:///var/run/docker.sock, tcp://host:2375 or ssh://user@host. EC2: the region.",
            maxlength=255,
        ),
        Field(
            "max_runtimes", "Capacity", "number", hint="How many dedicated runtimes it may run.", maxlength=6
        ),
        Field(
            "hourly_cost_cents",
            "Cost per hour (cents)",
            "number",
            value="0",
            hint="What an hour of a runtime on it costs you, for the margins.",
            maxlength=8,
        ),
    ),
)


@router.get("/runtime-hosts/new", response_class=HTMLResponse)
async def new_runtime_host(request: Request, found: AdminViewerDep) -> HTMLResponse:
    return ask(request, found, NEW_HOST)


@router.post("/runtime-hosts", response_class=HTMLResponse)
async def add_runtime_host(
    request: Request, found: AdminViewerDep, uow: UoWDep, hosts: RuntimeHostsDep
) -> Response:
    form = await request.form()
    values = {f.name: str(form.get(f.name, "")).strip() for f in NEW_HOST.fields}
    try:
        body = RuntimeHostCreate(**{k: v for k, v in values.items() if v != ""})
    except ValidationError as exc:
        return invalid(request, found, NEW_HOST, exc, values, {})

    async def describe() -> Confirm:
        return NEW_HOST

    added = await act(
        request,
        found,
        uow,
        hosts.add(NewHost(**body.model_dump()), found.principal, client_ip(request)),
        describe,
        values,
    )
    if isinstance(added, HTMLResponse):
        return added
    return back_to("/admin/runtime-hosts", f"Added {body.name}.")


HOST_ACTIONS = {
    "pause": (
        "Pause",
        "It takes no new dedicated runtime; those it holds keep running.",
        False,
    ),
    "resume": ("Resume", "It takes new dedicated runtimes again.", False),
    "remove": ("Remove", "It is forgotten; only a host holding no runtime can go.", True),
}
HostAction = Annotated[str, Path(pattern="^(pause|resume|remove)$")]


async def _host_confirm(hosts: RuntimeHostsDep, host_id: str, action: str) -> Confirm:
    host = await hosts.get(host_id)
    verb, effect, danger = HOST_ACTIONS[action]
    return Confirm(
        title=f"{verb} {host.name}",
        heading=f"{verb} this host",
        intro=f"{host.driver} at {host.address or 'this machine'}: {await hosts.held(host.id)} of "
        f"{host.max_runtimes} runtime(s).",
        action=f"/admin/runtime-hosts/{host.id}/{action}",
        button=f"{verb} host",
        back="/admin/runtime-hosts",
        lines=[effect],
        danger=danger,
    )


@router.get("/runtime-hosts/{host_id}/{action}", response_class=HTMLResponse)
async def host_action_form(
    request: Request, host_id: str, action: HostAction, found: AdminViewerDep, hosts: RuntimeHostsDep
) -> HTMLResponse:
    return ask(request, found, await _host_confirm(hosts, host_id, action))


@router.post("/runtime-hosts/{host_id}/{action}", response_class=HTMLResponse)
async def host_action(
    request: Request,
    host_id: str,
    action: HostAction,
    found: AdminViewerDep,
    uow: UoWDep,
    hosts: RuntimeHostsDep,
) -> Response:
    ip = client_ip(request)
    change: Awaitable[object] = (
        hosts.remove(host_id, found.principal, ip)
        if action == "remove"
        else hosts.set_enabled(host_id, action == "resume", found.principal, ip)
    )

    async def describe() -> Confirm:
        return await _host_confirm(hosts, host_id, action)

    outcome = await act(request, found, uow, change, describe)
    if isinstance(outcome, HTMLResponse):
        return outcome
    return back_to(
        "/admin/runtime-hosts", {"pause": "Paused.", "resume": "Resumed.", "remove": "Removed."}[action]
    )


# --- the audit log and the margins ----------------------------------------------------------------------


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/audit-log", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    found: AdminViewerDep,
    uow: UoWDep,
    actor: Annotated[str, Query(max_length=320)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    org_id: Annotated[str, Query(max_length=32)] = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    skip: Skip = 0,
) -> HTMLResponse:
    log = AuditRepository(uow.session)
    first, last = _date(start), _date(end)
    error = None
    if (start and first is None) or (end and last is None):
        error = "Give days as YYYY-MM-DD."
    try:
        since, until = day_range(first, last)
    except HutchError as exc:
        error, since, until = exc.detail, None, None
    where = AuditFilter(
        org_id=org_id.strip() or None,
        action=action or None,
        actor=actor.strip() or None,
        since=since,
        until=until,
    )
    entries, total = await log.page(where, skip=skip, limit=PAGE)
    filters = {"actor": actor, "action": action, "org_id": org_id, "from": start, "to": end}
    return page(
        request,
        "admin/audit.html",
        found,
        section="admin",
        entries=entries,
        total=total,
        skip=skip,
        size=PAGE,
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        actions=await log.actions(),
        error=error,
    )


@router.get("/margins", response_class=HTMLResponse)
async def margins(
    request: Request, found: AdminViewerDep, uow: UoWDep, resources: ResourcesDep, days: int = 30
) -> HTMLResponse:
    days = min(max(days, 7), 365)
    report = await margin(uow.session, resources.settings, Range.of(days, None, None, "UTC"))
    return page(request, "admin/margins.html", found, section="admin", report=report, days=days)
