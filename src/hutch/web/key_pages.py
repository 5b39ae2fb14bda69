"""One API key in the dashboard: its limits (rate, monthly budget, allowed agents, expiry), set when it is
created and changed later, through the same service as ``PATCH /api/v1/api-keys/{id}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from hutch.agents.service import AgentService
from hutch.apikeys.schemas import ApiKeyUpdate
from hutch.apikeys.service import list_api_keys, spent_this_month, update_api_key
from hutch.core.errors import Forbidden, HutchError, NotFound
from hutch.core.request_context import client_ip
from hutch.db.engine import UnitOfWork
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import _
from hutch.resources import Resources
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, field_errors, page

router = APIRouter(prefix="/app/api-keys", include_in_schema=False)
# The API's field names, as the forms call them.
FORM_FIELD = {"expires_at": "expires", "monthly_budget_cents": "budget", "rate_limit_per_minute": "rate"}


@dataclass
class KeyLimits:
    """A key form's limits, as the API takes them, or what is wrong with them."""

    fields: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def key_limits(form: FormData) -> KeyLimits:
    """Expiry (a date: the key works through that day, UTC), requests per minute, a monthly budget in
    dollars and the allowed agents (none ticked: every agent). Empty means no limit."""
    found = KeyLimits()
    expires = str(form.get("expires", "")).strip()
    try:
        found.fields["expires_at"] = (
            datetime.combine(date.fromisoformat(expires), time.max, UTC) if expires else None
        )
    except ValueError:
        found.errors["expires"] = _("Use a date.")
    rate = str(form.get("rate", "")).strip()
    if rate and not rate.isdigit():
        found.errors["rate"] = _("Give a whole number of requests per minute, or leave it empty.")
    else:
        found.fields["rate_limit_per_minute"] = int(rate) if rate else None
    budget = str(form.get("budget", "")).strip().removeprefix("$")
    try:
        cents = Decimal(budget) * 100 if budget else None
        if cents is not None and (cents != cents.to_integral_value() or cents < 0):
            raise InvalidOperation
        found.fields["monthly_budget_cents"] = int(cents) if cents is not None else None
    except InvalidOperation:
        found.errors["budget"] = _("Give an amount in dollars, like 25 or 12.50, or leave it empty.")
    agents = [str(a) for a in form.getlist("agents")]
    found.fields["agent_ids"] = agents or None
    return found


def form_errors(exc: ValidationError) -> dict[str, str]:
    return {FORM_FIELD.get(k, k): v for k, v in field_errors(exc).items()}


async def org_agents(uow: UnitOfWork, resources: Resources, found: Viewer) -> list[tuple[str, str]]:
    """The org's agents a key may be limited to: (id, name)."""
    agents, _ = await AgentService.of(uow, resources).page(found.principal, 0, 200)
    return [(a.id, a.name) for a in agents]


def manager_only(found: Viewer) -> None:
    if not found.can_manage:
        raise Forbidden(_("Only the organisation's owners and admins can do this."))


def key_values(key: Any) -> dict[str, Any]:
    """A key's limits as its form shows them."""
    budget = key.monthly_budget_cents
    return {
        "label": key.label,
        "expires": key.expires_at.date().isoformat() if key.expires_at else "",
        "rate": str(key.rate_limit_per_minute or ""),
        "budget": "" if budget is None else f"{budget / 100:.2f}",
        "agents": list(key.agent_ids or []),
    }


async def _key_page(
    request: Request,
    found: Viewer,
    uow: UnitOfWork,
    resources: Resources,
    key_id: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    key = next((k for k in await list_api_keys(uow.session, found.principal) if k.id == key_id), None)
    if key is None:
        raise NotFound("API key")
    spent = (await spent_this_month(uow.session, found.principal)).get(key.id, 0)
    context: dict[str, Any] = {"errors": {}, "values": key_values(key), **extra}
    return page(
        request,
        "app/key.html",
        found,
        status_code=status_code,
        section="keys",
        key=key,
        spent_cents=spent,
        agents=await org_agents(uow, resources, found),
        flash=_("Saved.") if request.query_params.get("note") == "saved" else None,
        **context,
    )


@router.get("/{key_id}", response_class=HTMLResponse)
async def key_page(
    key_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    manager_only(found)
    return await _key_page(request, found, uow, resources, key_id)


@router.post("/{key_id}", response_class=HTMLResponse)
async def change_key(
    key_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    manager_only(found)
    form = await request.form()
    limits = key_limits(form)
    label = str(form.get("label", ""))
    values = {
        "label": label,
        **{k: str(form.get(k, "")) for k in ("expires", "rate", "budget")},
        "agents": [str(a) for a in form.getlist("agents")],
    }
    errors = dict(limits.errors)
    if not errors:
        try:
            change = ApiKeyUpdate(label=label, **limits.fields)
        except ValidationError as exc:
            errors = form_errors(exc)
        else:
            changed = await attempt(
                uow, update_api_key(uow.session, found.principal, key_id, change, client_ip(request))
            )
            if not isinstance(changed, HutchError):
                return RedirectResponse(f"/app/api-keys/{key_id}?note=saved", status_code=303)
            if isinstance(changed, NotFound):
                raise changed
            field_name = getattr(changed, "field", "form")
            errors = {FORM_FIELD.get(field_name, field_name): error_text(changed)}
    return await _key_page(request, found, uow, resources, key_id, 422, errors=errors, values=values)
