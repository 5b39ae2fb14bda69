"""The organisation's pages: API and provider keys, billing, usage, team, and the manager agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from hutch.accounts.models import OrgRole
from hutch.accounts.orgs import OrgService
from hutch.accounts.schemas import OrgUpdate
from hutch.admin.analytics import org_usage
from hutch.agents.repository import AgentRepository
from hutch.agents.schemas import AgentCreate, ProviderKeyCreate
from hutch.agents.service import ProviderKeyService
from hutch.apikeys.schemas import ApiKeyCreate
from hutch.apikeys.service import create_api_key, list_api_keys, revoke_api_key, spent_this_month
from hutch.billing.service import BillingService
from hutch.billing.subscriptions import Subscriptions
from hutch.channels.repository import ChannelRepository
from hutch.core.errors import Forbidden, HutchError, ServiceUnavailable
from hutch.core.request_context import client_ip
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _, current_language, ngettext
from hutch.resources import Resources
from hutch.tasks.manager import MANAGER_ROLE
from hutch.web import charts
from hutch.web.app_pages import agents_service, first_error
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, page
from hutch.web.inbox_pages import CHANNELS
from hutch.web.key_pages import FORM_FIELD, form_errors, key_limits, org_agents
from hutch.web.languages import language_choices, translated_note
from hutch.web.sso_pages import team_section

router = APIRouter(prefix="/app", include_in_schema=False)
SCOPES = [("read", N_("Read")), ("write", N_("Write")), ("chat", N_("Chat"))]
NOTES = {
    "revoked": N_("The key is revoked: requests with it are refused from now on."),
    "provider": N_("Provider key saved; models of that provider can answer now."),
    "provider-deleted": N_("Provider key deleted."),
    "canceled": N_("Your subscription ends at the end of the paid period."),
    "changed": N_("Plan changed."),
    "invited": N_("Invitation sent."),
    "paid": N_("Thank you! Your payment is being confirmed; this page shows it in a moment."),
    "language": N_("Saved: your agents' own notices are in the language you chose."),
}


def _manager_only(found: Viewer) -> None:
    if not found.can_manage:
        raise Forbidden(_("Only the organisation's owners and admins can do this."))


def _note(request: Request) -> str | None:
    return translated_note(NOTES, request.query_params.get("note"))


# --- API keys -----------------------------------------------------------------------------------------


async def _keys_page(
    request: Request, found: Viewer, uow: UoWDep, resources: Resources, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    keys = await list_api_keys(uow.session, found.principal)
    spent = await spent_this_month(uow.session, found.principal)
    agents = await org_agents(uow, resources, found)
    providers = await ProviderKeyService(
        uow.session, resources.settings, resources.llm, resources.secret_box
    ).list(found.principal)
    provider_names = {k: p.display_name for k, p in resources.catalog.providers.items() if k != "demo"}
    context: dict[str, Any] = {"created": None, "errors": {}, "values": {}, **extra}
    return page(
        request,
        "app/keys.html",
        found,
        status_code=status_code,
        section="keys",
        keys=keys,
        spent=spent,
        agents=agents,
        agent_names=dict(agents),
        providers=providers,
        provider_names=provider_names,
        scopes=SCOPES,
        flash=_note(request),
        **context,
    )


@router.get("/api-keys", response_class=HTMLResponse)
async def keys_page(request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> HTMLResponse:
    _manager_only(found)
    return await _keys_page(request, found, uow, resources)


@router.post("/api-keys", response_class=HTMLResponse)
async def create_key(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    label: Annotated[str, Form(max_length=200)] = "",
    expires: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    _manager_only(found)
    form = await request.form()
    scopes = [str(s) for s in form.getlist("scopes")]
    values = {
        "label": label,
        "expires": expires,
        "scopes": scopes,
        **{k: str(form.get(k, "")) for k in ("rate", "budget")},
        "agents": [str(a) for a in form.getlist("agents")],
    }
    limits = key_limits(form)
    errors = dict(limits.errors)
    if not errors:
        try:
            body = ApiKeyCreate.model_validate({"label": label, "scopes": scopes, **limits.fields})
        except ValidationError as exc:
            errors = form_errors(exc)
        else:
            made = await attempt(uow, create_api_key(uow.session, found.principal, body, client_ip(request)))
            if not isinstance(made, HutchError):
                key, plaintext = made
                return await _keys_page(
                    request, found, uow, resources, created={"key": key, "plaintext": plaintext}
                )
            field_name = getattr(made, "field", "form")
            errors = {FORM_FIELD.get(field_name, field_name): error_text(made)}
    return await _keys_page(request, found, uow, resources, 422, errors=errors, values=values)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, found: ViewerDep, uow: UoWDep) -> Response:
    _manager_only(found)
    await revoke_api_key(uow.session, found.principal, key_id, client_ip(request))
    return RedirectResponse("/app/api-keys?note=revoked", status_code=303)


@router.post("/provider-keys", response_class=HTMLResponse)
async def add_provider_key(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    provider: Annotated[str, Form(max_length=64)] = "",
    api_key: Annotated[str, Form(max_length=500)] = "",
    base_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _manager_only(found)
    values = {"provider": provider, "base_url": base_url}
    try:
        body = ProviderKeyCreate(provider=provider, api_key=api_key, base_url=base_url or None)
        await ProviderKeyService(uow.session, resources.settings, resources.llm, resources.secret_box).add(
            found.principal, body
        )
    except ValidationError as exc:
        field, text = first_error(exc)
        return await _keys_page(request, found, uow, resources, 422, errors={field: text}, values=values)
    except HutchError as exc:
        await uow.rollback()
        errors = {getattr(exc, "field", "provider"): getattr(exc, "message", str(exc.detail))}
        return await _keys_page(request, found, uow, resources, exc.status_code, errors=errors, values=values)
    return RedirectResponse("/app/api-keys?note=provider", status_code=303)


@router.post("/provider-keys/{key_id}/delete")
async def delete_provider_key(
    key_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    _manager_only(found)
    await ProviderKeyService(uow.session, resources.settings, resources.llm, resources.secret_box).remove(
        found.principal, key_id
    )
    return RedirectResponse("/app/api-keys?note=provider-deleted", status_code=303)


# --- billing ------------------------------------------------------------------------------------------


# A limit's usage where its name differs from the limit's (a quota per month counts this month's use).
USED_BY_LIMIT = {
    "messages_per_month": "messages_this_month",
    "messages_per_day": "messages_today",
    "tool_calls_per_month": "tool_calls_this_month",
    "transcription_minutes_per_month": "transcription_minutes_this_month",
}


def _bars(limits: dict[str, Any], usage: dict[str, Any]) -> list[dict[str, Any]]:
    """Usage against each limit the plan sets, with how close it is."""
    rows = []
    for name, limit in limits.items():
        used = usage.get(USED_BY_LIMIT.get(name, name))
        if not isinstance(limit, int) or isinstance(limit, bool) or not isinstance(used, int | float):
            continue
        percent = 100 if limit == 0 else min(100, round(100 * used / limit))
        level = "over" if used >= limit else "near" if percent >= 80 else ""
        rows.append(
            {"name": name.replace("_", " "), "used": used, "limit": limit, "percent": percent, "level": level}
        )
    return rows


@router.get("/billing", response_class=HTMLResponse)
async def billing_page(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    service = BillingService.of(uow, resources)
    usage = await service.usage(found.principal)
    # Counted by the channels domain (which builds on billing), for the plan's telegram_bots bar.
    usage.usage["telegram_bots"] = await ChannelRepository(uow.session).telegram_bots_in_org(found.org_id)
    entries, _ = await service.ledger.entries(found.org_id, 0, 20)
    payments = await service.payments(found.org_id, 20)
    return page(
        request,
        "app/billing.html",
        found,
        section="billing",
        usage=usage,
        bars=_bars(usage.limits, usage.usage),
        subscription=await service.subscription(found.org_id),
        balance=await service.balance(found.org_id),
        plan=resources.plans.plan_or_free(found.org_plan),
        plans=resources.plans.plans,
        packages=resources.plans.packages,
        entries=entries,
        payments=payments,
        stripe=resources.stripe is not None,
        flash=_note(request),
        error=request.query_params.get("error"),
    )


def _subscriptions(uow: UoWDep, resources: Resources) -> Subscriptions:
    if resources.stripe is None:
        raise ServiceUnavailable(
            "Payments are not set up on this deployment; ask the operator to change your plan."
        )
    return Subscriptions.of(uow, resources)


async def _to_stripe(action: Any) -> Response:
    try:
        url = await action
    except HutchError as exc:
        return RedirectResponse(f"/app/billing?error={exc.detail}", status_code=303)
    return RedirectResponse(url if isinstance(url, str) else url[0], status_code=303)


@router.post("/billing/checkout")
async def billing_checkout(
    found: ViewerDep, uow: UoWDep, resources: ResourcesDep, plan: Annotated[str, Form(max_length=64)]
) -> Response:
    _manager_only(found)
    base = resources.settings.base_url
    subscriptions = _subscriptions(uow, resources)
    action = subscriptions.checkout_plan(
        found.principal, plan, f"{base}/app/billing?note=paid", f"{base}/app/billing"
    )
    return await _to_stripe(action)


@router.post("/billing/change")
async def billing_change(
    found: ViewerDep, uow: UoWDep, resources: ResourcesDep, plan: Annotated[str, Form(max_length=64)]
) -> Response:
    _manager_only(found)
    try:
        await _subscriptions(uow, resources).change_plan(found.principal, plan)
    except HutchError as exc:
        await uow.rollback()
        return RedirectResponse(f"/app/billing?error={exc.detail}", status_code=303)
    return RedirectResponse("/app/billing?note=changed", status_code=303)


@router.post("/billing/buy")
async def billing_buy(
    found: ViewerDep, uow: UoWDep, resources: ResourcesDep, package: Annotated[str, Form(max_length=64)]
) -> Response:
    _manager_only(found)
    base = resources.settings.base_url
    action = _subscriptions(uow, resources).checkout_package(
        found.principal, package, f"{base}/app/billing?note=paid", f"{base}/app/billing"
    )
    return await _to_stripe(action)


@router.post("/billing/portal")
async def billing_portal(found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    _manager_only(found)
    action = _subscriptions(uow, resources).portal(
        found.principal, f"{resources.settings.base_url}/app/billing"
    )
    return await _to_stripe(action)


@router.post("/billing/cancel")
async def billing_cancel(found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    _manager_only(found)
    try:
        await _subscriptions(uow, resources).cancel(found.principal)
    except HutchError as exc:
        await uow.rollback()
        return RedirectResponse(f"/app/billing?error={exc.detail}", status_code=303)
    return RedirectResponse("/app/billing?note=canceled", status_code=303)


# --- usage --------------------------------------------------------------------------------------------


USAGE_CHARTS = charts.RecentCharts()


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(request: Request, found: ViewerDep, uow: UoWDep, days: int = 30) -> HTMLResponse:
    days = min(max(days, 7), 365)
    key = (found.org_id, str(days), current_language())  # the charts' words are in the reader's language
    drawn = USAGE_CHARTS.get(key)
    if drawn is None:
        drawn = await _usage_charts(uow, found.org_id, days)
        USAGE_CHARTS.put(key, drawn)
    graphs, empty = drawn
    return page(request, "app/usage.html", found, section="usage", graphs=graphs, days=days, empty=empty)


async def _usage_charts(uow: UoWDep, org_id: str, days: int) -> tuple[dict[str, Markup], bool]:
    """The usage page's charts, and whether there is nothing to show yet; their titles, legends and text
    alternatives in the language of the moment."""
    report = await org_usage(uow.session, org_id, days)
    start = datetime.now(UTC).date() - timedelta(days=days - 1)
    labels = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    index = {label: i for i, label in enumerate(labels)}
    by_channel: dict[str, list[float]] = {}
    for row in report["channels"]:
        values = by_channel.setdefault(_(CHANNELS.get(row["channel"], row["channel"])), [0.0] * days)
        values[index[row["day"].isoformat()]] += row["inbound"] + row["outbound"]
    series = {name: [0.0] * days for name in ("messages", "input", "output", "voice", "tools", "notes")}
    for row in report["daily"]:
        i = index.get(row["day"].isoformat())
        if i is not None:
            series["messages"][i] = row["messages"]
            series["input"][i], series["output"][i] = row["input_tokens"], row["output_tokens"]
            series["voice"][i] = row["voice_minutes"]
            series["tools"][i] = row["tool_calls"]
            series["notes"][i] = row["transcription_minutes"]
    total = {name: sum(values) for name, values in series.items()}
    summary = ", ".join(f"{k} {charts.number(sum(v))}" for k, v in by_channel.items()) or _("none")
    x, per_channel = charts.weekly_when_long(labels, by_channel or {_("No messages"): [0.0] * days}, days)
    daily = charts.weekly_when_long(labels, series, days)[1]
    tools, notes = _("Tool calls"), _("Voice notes (min)")
    graphs = {
        "channels": charts.bars(
            _("Messages by channel"),
            x,
            per_channel,
            _("Messages by channel: {summary}").format(summary=summary),
        ),
        "messages": charts.line(
            _("Messages"),
            x,
            {_("Messages"): daily["messages"]},
            charts.describe(
                ngettext(
                    "%(num)s message over the last %(days)s days",
                    "%(num)s messages over the last %(days)s days",
                    round(total["messages"]),
                ),
                total["messages"],
                days,
            ),
        ),
        "tokens": charts.bars(
            _("Tokens"),
            x,
            {_("Input"): daily["input"], _("Output"): daily["output"]},
            charts.describe(
                ngettext(
                    "%(num)s token over the last %(days)s days",
                    "%(num)s tokens over the last %(days)s days",
                    round(total["input"] + total["output"]),
                ),
                total["input"] + total["output"],
                days,
            ),
        ),
        "voice": charts.line(
            _("Voice minutes"),
            x,
            {_("Minutes"): daily["voice"]},
            charts.describe(
                ngettext(
                    "%(num)s voice minute over the last %(days)s days",
                    "%(num)s voice minutes over the last %(days)s days",
                    round(total["voice"]),
                ),
                total["voice"],
                days,
            ),
        ),
        "tools": charts.bars(
            _("Tool calls and voice notes"),
            x,
            {tools: daily["tools"], notes: daily["notes"]},
            _(
                "Over the last {days} days: {calls} tool calls, and {minutes} minutes of voice notes "
                "transcribed"
            ).format(
                days=days, calls=charts.number(total["tools"]), minutes=charts.number(total["notes"], 1)
            ),
        ),
    }
    return graphs, total["messages"] == 0 and not by_channel


# --- team ---------------------------------------------------------------------------------------------


def _orgs(uow: UoWDep, resources: Resources) -> OrgService:
    return OrgService(uow, resources.settings, resources.secret_box)


async def _team_page(
    request: Request, found: Viewer, uow: UoWDep, resources: Resources, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    service = _orgs(uow, resources)
    members = await service.members(found.principal)
    invitations = await service.pending_invitations(found.principal) if found.can_manage else []
    org = await service.current(found.principal)
    context: dict[str, Any] = {"errors": {}, "values": {}, **extra}
    return page(
        request,
        "app/team.html",
        found,
        status_code=status_code,
        section="team",
        members=members,
        invitations=invitations,
        roles=[r.value for r in OrgRole],
        flash=_note(request),
        sso_org=await team_section(uow, resources, found.org_id),  # the org's single sign-on requirement
        org_language=(org.language, org.use_end_user_language),  # of its bots' notices
        languages=language_choices(resources.settings),
        **context,
    )


@router.post("/team/language")
async def choose_org_language(
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    language: Annotated[str, Form(max_length=16)] = "",
    use_end_user_language: Annotated[bool, Form()] = False,
) -> Response:
    """The same as ``PATCH /api/v1/org {language, use_end_user_language}`` (owners and admins)."""
    _manager_only(found)
    update = OrgUpdate(language=language or None, use_end_user_language=use_end_user_language)
    await _orgs(uow, resources).update(found.principal, update)
    return RedirectResponse("/app/team?note=language", status_code=303)


@router.get("/team", response_class=HTMLResponse)
async def team_page(request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> HTMLResponse:
    return await _team_page(request, found, uow, resources)


@router.post("/team/invitations", response_class=HTMLResponse)
async def invite(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=16)] = "member",
) -> Response:
    _manager_only(found)
    values = {"email": email, "role": role}
    try:
        await _orgs(uow, resources).invite(found.principal, email.strip().lower(), OrgRole(role))
    except (ValueError, HutchError) as exc:
        await uow.rollback()
        text = exc.detail if isinstance(exc, HutchError) else _("Choose a role.")
        return await _team_page(request, found, uow, resources, 422, errors={"email": text}, values=values)
    return RedirectResponse("/app/team?note=invited", status_code=303)


@router.post("/team/members/{user_id}/role")
async def change_role(
    user_id: str,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    role: Annotated[str, Form(max_length=16)],
) -> Response:
    _manager_only(found)
    try:
        new_role = OrgRole(role)
    except ValueError:
        raise Forbidden("Unknown role.") from None
    await _orgs(uow, resources).change_role(found.principal, user_id, new_role)
    return RedirectResponse("/app/team", status_code=303)


@router.post("/team/members/{user_id}/remove")
async def remove_member(user_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    _manager_only(found)
    await _orgs(uow, resources).remove_member(found.principal, user_id)
    return RedirectResponse("/app/team", status_code=303)


@router.post("/team/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    invitation_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    _manager_only(found)
    await _orgs(uow, resources).revoke_invitation(found.principal, invitation_id)
    return RedirectResponse("/app/team", status_code=303)


# --- the manager (AI employees) -----------------------------------------------------------------------


@router.get("/manager", response_class=HTMLResponse)
async def manager(request: Request, found: ViewerDep, uow: UoWDep) -> Response:
    existing = await AgentRepository(uow.session).first_with_role(found.principal, MANAGER_ROLE)
    if existing is not None:
        return RedirectResponse(f"/app/agents/{existing.id}/chat", status_code=303)
    return page(request, "app/manager.html", found, section="manager")


@router.post("/manager")
async def create_manager(found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    data = AgentCreate(name="Manager", role=MANAGER_ROLE)
    agent = await agents_service(uow, resources).create(found.principal, data)
    return RedirectResponse(f"/app/agents/{agent.id}/chat?welcome=1", status_code=303)
