"""The customer's dashboard: onboarding and the agents list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hutch.agents.models import Audience
from hutch.agents.roles import ROLE_TEMPLATES
from hutch.agents.schemas import AgentCreate
from hutch.agents.service import AgentService
from hutch.billing.subscriptions import Subscriptions
from hutch.core.errors import HutchError
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _
from hutch.resources import Resources
from hutch.web.deps import Viewer, ViewerDep, page
from hutch.web.languages import validation_message

router = APIRouter(prefix="/app", include_in_schema=False)
CHANNELS = [
    ("chat", N_("Just try it here first")),
    ("telegram", N_("Telegram (a bot of your own, created in two taps)")),
    ("whatsapp", N_("WhatsApp (your own number reaches your assistant)")),
    ("widget", N_("A chat bubble on your website")),
]
TAB_OF_CHANNEL = {"chat": "chat", "telegram": "channels", "whatsapp": "channels", "widget": "channels"}


def agents_service(uow: UoWDep, resources: Resources) -> AgentService:
    return AgentService.of(uow, resources)


def first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "form"
    return field, validation_message(error)


@router.get("", response_class=HTMLResponse)
async def home(found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    _, total = await agents_service(uow, resources).page(found.principal, 0, 1)
    return RedirectResponse("/app/agents" if total else "/app/onboarding", status_code=303)


def _onboarding(
    request: Request,
    found: Viewer,
    resources: Resources,
    *,
    plan: str = "",
    name: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    plans = resources.plans.plans
    chosen = plan if resources.plans.plan(plan) else found.org_plan
    return page(
        request,
        "app/onboarding.html",
        found,
        status_code=status_code,
        section="agents",
        plans=plans,
        chosen_plan=chosen,
        channels=CHANNELS,
        roles=list(ROLE_TEMPLATES.values()),
        name=name,
        error=error,
        stripe=resources.stripe is not None,
    )


@router.get("/onboarding", response_class=HTMLResponse)
async def onboarding(
    request: Request, found: ViewerDep, resources: ResourcesDep, plan: str = ""
) -> HTMLResponse:
    return _onboarding(request, found, resources, plan=plan, name=_("My assistant"))


@router.post("/onboarding", response_class=HTMLResponse)
async def finish_onboarding(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=64)] = "assistant",
    plan: Annotated[str, Form(max_length=64)] = "",
    channel: Annotated[str, Form(max_length=16)] = "chat",
) -> Response:
    """Create the first agent, then send the user to pay for a paid plan (if chosen) or straight to it."""
    audience = Audience.PERSONAL if channel == "whatsapp" else Audience.PUBLIC
    try:
        data = AgentCreate(name=name, role=role, audience=audience)
        agent = await agents_service(uow, resources).create(found.principal, data)
    except ValidationError as exc:
        return _onboarding(
            request, found, resources, plan=plan, name=name, error=first_error(exc)[1], status_code=422
        )
    except HutchError as exc:
        await uow.rollback()
        return _onboarding(
            request,
            found,
            resources,
            plan=plan,
            name=name,
            error=str(exc.detail),
            status_code=exc.status_code,
        )
    target = f"/app/agents/{agent.id}/{TAB_OF_CHANNEL.get(channel, 'chat')}?welcome=1"
    chosen = resources.plans.plan(plan)
    if chosen is not None and chosen.is_paid and resources.stripe is not None and found.can_manage:
        await uow.checkpoint()  # the agent exists whatever happens at Stripe
        base = resources.settings.base_url
        subscriptions = Subscriptions.of(uow, resources)
        url, _ = await subscriptions.checkout_plan(
            found.principal, chosen.id, base + target, base + "/app/billing"
        )
        return RedirectResponse(url, status_code=303)
    return RedirectResponse(target, status_code=303)


@router.get("/agents", response_class=HTMLResponse)
async def agents(request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> HTMLResponse:
    return await _agents_page(request, found, uow, resources)


async def _agents_page(
    request: Request,
    found: Viewer,
    uow: UoWDep,
    resources: Resources,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    items, total = await agents_service(uow, resources).page(found.principal, 0, 200)
    model_names = {m.id: m.display_name for m in resources.catalog.models.values()}
    return page(
        request,
        "app/agents.html",
        found,
        status_code=status_code,
        section="agents",
        agents=items,
        total=total,
        roles=list(ROLE_TEMPLATES.values()),
        model_names=model_names,
        values=values or {},
        errors=errors or {},
    )


@router.post("/agents", response_class=HTMLResponse)
async def create_agent(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=64)] = "assistant",
) -> Response:
    values = {"name": name, "role": role}
    try:
        agent = await agents_service(uow, resources).create(
            found.principal, AgentCreate(name=name, role=role)
        )
    except ValidationError as exc:
        field, text = first_error(exc)
        errors = {"name" if field == "name" else "form": text}
        return await _agents_page(request, found, uow, resources, values, errors, 422)
    except HutchError as exc:
        await uow.rollback()
        return await _agents_page(
            request, found, uow, resources, values, {"form": str(exc.detail)}, exc.status_code
        )
    return RedirectResponse(f"/app/agents/{agent.id}/chat", status_code=303)
