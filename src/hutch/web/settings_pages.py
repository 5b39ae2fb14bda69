"""What each person sets for themselves: the organisation the dashboard shows, the Telegram and WhatsApp
chats that reach their personal agent, and how Hutch tells them about their organisations. The same
services as ``/api/v1/users/me/...`` (the API names its org with ``X-Org-Id``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hutch.agents.models import Audience
from hutch.agents.service import AgentService
from hutch.channels.links import links_of, unlink
from hutch.channels.telegram.platform import platform_token, platform_username, start_telegram_link
from hutch.channels.whatsapp.gateway import WhatsAppNotConfigured, whatsapp_configured
from hutch.channels.whatsapp.service import link_instructions, start_link
from hutch.core.errors import HutchError, NotFound
from hutch.db.engine import UnitOfWork
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _
from hutch.notifications.models import NoticeKind
from hutch.notifications.preferences import NotificationSettings
from hutch.notifications.schemas import NoticeWays, PreferencesUpdate
from hutch.resources import Resources
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, page
from hutch.web.languages import translated_note
from hutch.web.public_pages import safe_next
from hutch.web.sessions import COOKIE, WebSessions

router = APIRouter(prefix="/app", include_in_schema=False)
E164 = re.compile(r"\+[1-9]\d{6,14}")
TELEGRAM_USERNAME = re.compile(r"@?[A-Za-z0-9_]{5,32}")
WAYS = ("email", "telegram", "whatsapp")
NOTES = {
    "removed": N_("Unlinked: messages from that chat no longer reach your assistant."),
    "saved": N_("Saved: notices go the ways you chose."),
}


# --- the organisation shown ---------------------------------------------------------------------------


@router.post("/org")
async def show_org(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    org_id: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Show another of the user's organisations on every page of this browser (others' answer 404)."""
    if org_id not in {org for org, _, _ in found.orgs}:
        raise NotFound("Organisation")
    await WebSessions(uow.session).show_org(request.cookies[COOKIE], org_id)
    target = safe_next(next)
    # A page of one org's resource (an agent, a key) means nothing in the other: start from its list.
    for prefix in ("/app/agents/", "/app/api-keys/"):
        if target.startswith(prefix):
            target = prefix.rstrip("/")
    return RedirectResponse(target, status_code=303)


# --- linked chats -------------------------------------------------------------------------------------


async def _personal_agents(uow: UnitOfWork, resources: Resources, found: Viewer) -> list[tuple[str, str]]:
    agents, _ = await AgentService.of(uow, resources).page(found.principal, 0, 200)
    return [(a.id, a.name) for a in agents if a.audience is Audience.PERSONAL]


async def _chats_page(
    request: Request,
    found: Viewer,
    uow: UnitOfWork,
    resources: Resources,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    agents = await _personal_agents(uow, resources, found)
    context: dict[str, Any] = {"errors": {}, "values": {}, "started": None, **extra}
    return page(
        request,
        "app/chats.html",
        found,
        status_code=status_code,
        section="chats",
        links=await links_of(uow, found.principal),
        agents=agents,
        agent_names=dict(agents),
        telegram=platform_token(resources.settings) is not None,
        whatsapp=whatsapp_configured(resources.settings),
        flash=translated_note(NOTES, request.query_params.get("note")),
        **context,
    )


@router.get("/settings/chats", response_class=HTMLResponse)
async def chats_page(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return await _chats_page(request, found, uow, resources)


@router.post("/settings/chats/telegram", response_class=HTMLResponse)
async def link_telegram(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    agent_id: Annotated[str, Form(max_length=64)] = "",
    telegram_username: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """Start linking the user's Telegram: a deep link to the operator's bot with a one-time code."""
    values = {"agent_id": agent_id, "telegram_username": telegram_username}
    username = telegram_username.strip() or None
    if username is not None and not TELEGRAM_USERNAME.fullmatch(username):
        errors = {"telegram_username": _("A Telegram username has 5 to 32 letters, digits or underscores.")}
        return await _chats_page(request, found, uow, resources, 422, errors=errors, values=values)

    async def begin() -> str:
        bot = await platform_username(resources.settings, resources.telegram)
        _, code = await start_telegram_link(uow, found.principal, agent_id or None, username)
        return f"https://t.me/{bot}?start={code}"

    started = await attempt(uow, begin())
    if isinstance(started, HutchError):
        errors = {"telegram": error_text(started)}
        return await _chats_page(
            request, found, uow, resources, started.status_code, errors=errors, values=values
        )
    return await _chats_page(request, found, uow, resources, started={"telegram": started})


@router.post("/settings/chats/whatsapp", response_class=HTMLResponse)
async def link_whatsapp(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    phone: Annotated[str, Form(max_length=32)] = "",
    agent_id: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """Start linking the user's WhatsApp number: they send the code shown from it."""
    values = {"phone": phone, "agent_id": agent_id}
    number = phone.strip().replace(" ", "")
    problem: HutchError | str | None = None
    if not whatsapp_configured(resources.settings):
        problem = WhatsAppNotConfigured()
    elif not E164.fullmatch(number):
        problem = _("Give the number in international form, with + and the country code, like +14155550100.")
    else:
        started = await attempt(
            uow, start_link(uow, resources.settings, found.principal, number, agent_id or None)
        )
        if not isinstance(started, HutchError):
            link, code = started
            note = link_instructions(resources.settings, link, code)
            return await _chats_page(request, found, uow, resources, started={"whatsapp": note})
        problem = started
    status_code = problem.status_code if isinstance(problem, HutchError) else 422
    errors = {"phone": error_text(problem) if isinstance(problem, HutchError) else problem}
    return await _chats_page(request, found, uow, resources, status_code, errors=errors, values=values)


@router.post("/settings/chats/{link_id}/remove")
async def remove_chat(link_id: str, found: ViewerDep, uow: UoWDep) -> Response:
    await unlink(uow, found.principal, link_id)
    return RedirectResponse("/app/settings/chats?note=removed", status_code=303)


# --- notification preferences -------------------------------------------------------------------------


async def _notifications_page(
    request: Request, found: Viewer, uow: UnitOfWork, resources: Resources, status_code: int = 200
) -> HTMLResponse:
    preferences = await NotificationSettings.of(uow, resources).read(found.user_id)
    return page(
        request,
        "app/notifications.html",
        found,
        status_code=status_code,
        section="notifications",
        preferences=preferences,
        ways=WAYS,
        flash=translated_note(NOTES, request.query_params.get("note")),
    )


@router.get("/settings/notifications", response_class=HTMLResponse)
async def notifications_page(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    return await _notifications_page(request, found, uow, resources)


@router.post("/settings/notifications")
async def save_notifications(
    request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Each kind of notice gets the ways ticked for it (``<kind>.<way>`` checkboxes); the general choice
    covers notices without a kind of their own (a dedicated runtime being ready)."""
    form = await request.form()
    notices = [
        NoticeWays(kind=kind, **{way: f"{kind.value}.{way}" in form for way in WAYS}) for kind in NoticeKind
    ]
    change = PreferencesUpdate(email="email" in form, chat="chat" in form, notices=notices)
    await NotificationSettings.of(uow, resources).change(found.user_id, change)
    return RedirectResponse("/app/settings/notifications?note=saved", status_code=303)
