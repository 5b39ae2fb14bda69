"""An agent's knowledge, channels, runtime, tasks and memories tabs in the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from hutch.botfactory.models import BotRequest
from hutch.botfactory.service import BotRequests, CreatorAccounts
from hutch.channels.models import ChannelType
from hutch.channels.schemas import widget_snippet
from hutch.channels.telegram.managed import ManagedBots
from hutch.channels.telegram.service import TelegramChannels
from hutch.channels.webchat.service import Widgets
from hutch.channels.whatsapp.gateway import WhatsAppNotConfigured, whatsapp_configured
from hutch.channels.whatsapp.service import link_instructions, start_link
from hutch.conversations.memories import Memories
from hutch.core.errors import HutchError, NotFound
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _
from hutch.knowledge.parsing import kind_of
from hutch.knowledge.service import KnowledgeService
from hutch.runtimes.service import RuntimeService
from hutch.tasks.service import Tasks
from hutch.web.agent_pages import agent_page, load_agent
from hutch.web.deps import ViewerDep, attempt, error_text
from hutch.web.languages import translated_note
from hutch.web.qr_codes import qr_svg

router = APIRouter(prefix="/app/agents/{agent_id}", include_in_schema=False)
Field = Annotated[str, Form(max_length=2000)]
E164 = re.compile(r"\+[1-9]\d{6,14}")


def back(agent_id: str, tab: str, note: str | None = None) -> RedirectResponse:
    suffix = f"?note={note}" if note else ""
    return RedirectResponse(f"/app/agents/{agent_id}/{tab}{suffix}", status_code=303)


NOTES = {
    "uploaded": N_("Uploaded: the document is being read and will be searchable in a moment."),
    "deleted": N_("Deleted."),
    "connected": N_("Connected."),
    "reconnected": N_("Reconnected: the bot answers again."),
    "requested": N_("Your bot is being created; this page shows it when it is ready (about a minute)."),
    "code": N_("A new verification code is shown below."),
    "removed": N_("Removed."),
    "runtime": N_("Done: the runtime's status below follows the change."),
    "task": N_("Task created: the agent plans it, then works through the steps."),
    "canceled": N_("Task canceled."),
    "forgotten": N_("Forgotten: the agent no longer knows it."),
}


def flash(request: Request) -> str | None:
    return translated_note(NOTES, request.query_params.get("note"))


# --- knowledge ----------------------------------------------------------------------------------------


@router.get("/knowledge", response_class=HTMLResponse)
async def knowledge_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep, q: str = ""
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    service = KnowledgeService.of(uow, resources)
    documents = await service.documents(found.principal, agent.id)
    results = await service.search(found.principal, agent.id, q[:500], 5) if q.strip() else None
    return agent_page(
        request,
        found,
        agent,
        "knowledge",
        documents=documents,
        q=q,
        results=results,
        flash=flash(request),
        max_mb=resources.settings.knowledge_max_upload_mb,
        error=None,
    )


@router.post("/knowledge", response_class=HTMLResponse)
async def knowledge_upload(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    form = await request.form()
    upload, title = form.get("file"), form.get("title")
    service = KnowledgeService.of(uow, resources)
    error = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = _("Choose a file to upload.")
    else:
        kind = kind_of(upload.filename, upload.content_type)
        if kind is None:
            error = (
                f"'{upload.filename}' is not a kind of document agents read (PDF, text, Markdown or HTML)."
            )
        else:
            name = title if isinstance(title, str) and title.strip() else upload.filename
            data = await upload.read()
            stored = await attempt(
                uow, service.upload(found.principal, agent.id, name.strip()[:300], data, kind)
            )
            if isinstance(stored, HutchError):
                error = error_text(stored)
    if error is not None:
        agent = await load_agent(found, uow, resources, agent_id)
        documents = await service.documents(found.principal, agent.id)
        return agent_page(
            request,
            found,
            agent,
            "knowledge",
            status_code=422,
            documents=documents,
            q="",
            results=None,
            max_mb=resources.settings.knowledge_max_upload_mb,
            error=error,
        )
    return back(agent.id, "knowledge", "uploaded")


@router.post("/knowledge/{document_id}/delete")
async def knowledge_delete(
    agent_id: str, document_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    await KnowledgeService.of(uow, resources).delete(found.principal, agent_id, document_id)
    return back(agent_id, "knowledge", "deleted")


# --- channels -----------------------------------------------------------------------------------------


async def _channels_context(
    found: ViewerDep, uow: UoWDep, resources: ResourcesDep, agent_id: str
) -> dict[str, Any]:
    channels = await TelegramChannels.of(uow, resources).list(found.principal, agent_id)
    requests = BotRequests(uow, resources.secret_box)
    bot_request: BotRequest | None
    try:
        bot_request = await requests.latest(found.principal, agent_id)
    except NotFound:
        bot_request = None
    verification = None
    ownership = await requests.verification(bot_request) if bot_request is not None else None
    if ownership is not None:
        stored, shown = ownership
        verification = {
            "verified": stored.verified_at is not None,
            "owner": stored.owner_username,
            "shown": shown,
        }
    snippets = {
        c.id: widget_snippet(resources.settings.base_url, c.external_id)
        for c in channels
        if c.type is ChannelType.WEBCHAT
    }
    platform = await ManagedBots.of(uow, resources).platform()
    return {
        "channels": channels,
        "snippets": snippets,
        "bot_request": bot_request,
        "verification": verification,
        "managed": platform.can_manage_bots if platform else None,  # None: no platform bot
        "platform_bot": platform.username if platform else None,
        "managed_link": None,
        "factory": await CreatorAccounts(uow.session, resources.secret_box).usable_count() > 0,
        "whatsapp": whatsapp_configured(resources.settings),
        "errors": {},
    }


@router.get("/channels", response_class=HTMLResponse)
async def channels_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    context = await _channels_context(found, uow, resources, agent.id)
    return agent_page(request, found, agent, "channels", flash=flash(request), **context)


async def _channel_error(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    agent_id: str,
    field: str,
    problem: HutchError | str,
) -> HTMLResponse:
    """The channels tab again, with what went wrong next to ``field`` (a refusal, or a form's own check)."""
    text = error_text(problem) if isinstance(problem, HutchError) else problem
    status_code = problem.status_code if isinstance(problem, HutchError) else 422
    agent = await load_agent(found, uow, resources, agent_id)
    context = await _channels_context(found, uow, resources, agent.id)
    context["errors"] = {field: text}
    return agent_page(request, found, agent, "channels", status_code=status_code, **context)


@router.post("/channels/telegram", response_class=HTMLResponse)
async def connect_telegram(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep, bot_token: Field
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    token = bot_token.strip()
    if not token or ":" not in token:
        text = _("Paste the token @BotFather gave you (it looks like 123456789:AAE...).")
        return await _channel_error(request, found, uow, resources, agent.id, "bot_token", text)
    connected = await attempt(
        uow, TelegramChannels.of(uow, resources).connect(found.principal, agent.id, token)
    )
    if isinstance(connected, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "bot_token", connected)
    return back(agent.id, "channels", "connected")


async def _managed_link_page(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    agent_id: str,
    request_id: str,
    link: str,
) -> HTMLResponse:
    """The channels tab with a new deep link (and its QR code), watching for the bot it creates."""
    agent = await load_agent(found, uow, resources, agent_id)
    asked = await ManagedBots.of(uow, resources).request(found.principal, request_id)
    context = await _channels_context(found, uow, resources, agent.id)
    context["managed_link"] = {
        "id": asked.id,
        "link": link,
        "qr": qr_svg(link),
        "expires_at": asked.expires_at,
    }
    return agent_page(request, found, agent, "channels", **context)


@router.post("/channels/telegram/managed", response_class=HTMLResponse)
async def create_managed_bot(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """A one-time link to the platform bot, which creates the customer's own bot in two taps."""
    agent = await load_agent(found, uow, resources, agent_id)
    started = await attempt(uow, ManagedBots.of(uow, resources).start(found.principal, agent.id))
    if isinstance(started, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "managed", started)
    asked, link = started
    return await _managed_link_page(request, found, uow, resources, agent.id, asked.id, link)


@router.get("/channels/telegram/managed/{request_id}")
async def managed_bot_state(
    agent_id: str, request_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> JSONResponse:
    """Where a managed bot's creation stands, for the page that waits for it."""
    asked = await ManagedBots.of(uow, resources).request(found.principal, request_id)
    if asked.agent_id != agent_id:
        raise NotFound("Managed bot request")
    state = {"status": asked.status.value, "bot_username": asked.bot_username, "error": asked.error}
    return JSONResponse(state)


@router.post("/channels/{channel_id}/reconnect", response_class=HTMLResponse)
async def reconnect_managed_bot(
    agent_id: str, channel_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """One tap on a broken managed bot: working again, or (it was deleted) a link to create another."""
    agent = await load_agent(found, uow, resources, agent_id)
    managed = ManagedBots.of(uow, resources)
    done = await attempt(uow, managed.reconnect(found.principal, agent.id, channel_id))
    if isinstance(done, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "managed", done)
    _, link = done
    if link is None:
        return back(agent.id, "channels", "reconnected")
    latest = await managed.latest(found.principal, agent.id)
    assert latest is not None
    return await _managed_link_page(request, found, uow, resources, agent.id, latest.id, link)


@router.post("/channels/telegram/auto", response_class=HTMLResponse)
async def request_bot(
    agent_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    name: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    requests = BotRequests(uow, resources.secret_box, resources.plans, resources.rate_limiter)
    asked = await attempt(uow, requests.request(found.principal, agent.id, name.strip() or None))
    if isinstance(asked, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "auto", asked)
    return back(agent.id, "channels", "requested")


@router.post("/channels/telegram/auto/code", response_class=HTMLResponse)
async def new_code(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    lifetime = timedelta(hours=resources.settings.botfactory_verification_hours)
    requests = BotRequests(uow, resources.secret_box)
    renewed = await attempt(uow, requests.renew_code(found.principal, agent.id, lifetime))
    if isinstance(renewed, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "auto", renewed)
    return back(agent.id, "channels", "code")


@router.post("/channels/webchat", response_class=HTMLResponse)
async def add_widget(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep, origins: Field
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    sites = [o.strip() for o in origins.replace(",", "\n").splitlines() if o.strip()]
    created = await attempt(uow, Widgets(uow).create(found.principal, agent.id, sites))
    if isinstance(created, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "origins", created)
    return back(agent.id, "channels", "connected")


@router.post("/channels/whatsapp", response_class=HTMLResponse)
async def link_whatsapp(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep, phone: Field
) -> Response:
    """Link the viewer's own WhatsApp number to this (personal) agent: they send the code from it."""
    agent = await load_agent(found, uow, resources, agent_id)
    settings = resources.settings
    if not whatsapp_configured(settings):
        return await _channel_error(
            request, found, uow, resources, agent.id, "phone", WhatsAppNotConfigured()
        )
    number = phone.strip().replace(" ", "")
    if not E164.fullmatch(number):
        text = _("Give the number in international form, with + and the country code, like +14155550100.")
        return await _channel_error(request, found, uow, resources, agent.id, "phone", text)
    started = await attempt(uow, start_link(uow, settings, found.principal, number, agent.id))
    if isinstance(started, HutchError):
        return await _channel_error(request, found, uow, resources, agent.id, "phone", started)
    link, code = started
    context = await _channels_context(found, uow, resources, agent.id)
    note = link_instructions(settings, link, code)
    return agent_page(request, found, agent, "channels", flash=note, **context)


@router.post("/channels/{channel_id}/delete")
async def remove_channel(
    agent_id: str, channel_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    await TelegramChannels.of(uow, resources).remove(found.principal, agent_id, channel_id)
    return back(agent_id, "channels", "removed")


# --- runtime ------------------------------------------------------------------------------------------


def _runtimes(uow: UoWDep, resources: ResourcesDep) -> RuntimeService:
    return RuntimeService.of(uow, resources)


@router.get("/runtime", response_class=HTMLResponse)
async def runtime_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    service = _runtimes(uow, resources)
    runtime, usage = await service.with_usage(found.principal, agent.id, resources)
    logs = ""
    if runtime is not None:
        try:
            logs = await service.logs(found.principal, agent.id, resources, 100)
        except HutchError as exc:
            logs = str(exc.detail)
    return agent_page(
        request,
        found,
        agent,
        "runtime",
        runtime=runtime,
        usage=usage,
        logs=logs,
        flash=flash(request),
        error=None,
    )


@router.post("/runtime/{action}", response_class=HTMLResponse)
async def runtime_action(
    agent_id: str, action: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    service = _runtimes(uow, resources)
    try:
        if action == "start":
            await service.request(found.principal, agent.id)
        elif action == "restart":
            await service.restart(found.principal, agent.id)
        elif action == "stop":
            await service.remove(found.principal, agent.id)
        else:
            raise NotFound("Action")
    except HutchError as exc:
        if isinstance(exc, NotFound) and action not in ("start", "restart", "stop"):
            raise
        await uow.rollback()
        agent = await load_agent(found, uow, resources, agent_id)
        runtime = await _runtimes(uow, resources).of_agent(found.principal, agent.id)
        return agent_page(
            request,
            found,
            agent,
            "runtime",
            status_code=exc.status_code,
            runtime=runtime,
            logs="",
            error=str(exc.detail),
        )
    return back(agent.id, "runtime", "runtime")


# --- tasks --------------------------------------------------------------------------------------------


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    tasks, total = await Tasks(uow).page(found.principal, agent.id, 0, 50)
    return agent_page(
        request, found, agent, "tasks", tasks=tasks, total=total, flash=flash(request), errors={}, values={}
    )


@router.post("/tasks", response_class=HTMLResponse)
async def create_task(
    agent_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    description: Annotated[str, Form(max_length=20_000)] = "",
    schedule: Annotated[str, Form(max_length=100)] = "",
    timezone: Annotated[str, Form(max_length=64)] = "UTC",
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    values = {"description": description, "schedule": schedule, "timezone": timezone}
    error = _("Describe the task.") if not description.strip() else None
    if error is None:
        try:
            await Tasks(uow).create(
                found.principal, agent.id, description.strip(), schedule.strip() or None, timezone or "UTC"
            )
        except HutchError as exc:
            await uow.rollback()
            error = str(exc.detail)
    if error is not None:
        agent = await load_agent(found, uow, resources, agent_id)
        tasks, total = await Tasks(uow).page(found.principal, agent.id, 0, 50)
        return agent_page(
            request,
            found,
            agent,
            "tasks",
            status_code=422,
            tasks=tasks,
            total=total,
            values=values,
            errors={"description": error},
        )
    return back(agent.id, "tasks", "task")


@router.post("/tasks/{task_id}/cancel")
async def cancel_task(
    agent_id: str, task_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    task = await Tasks(uow).get(found.principal, task_id)
    if task.agent_id != agent.id:
        raise NotFound("Task")
    await Tasks(uow).cancel(found.principal, task_id)
    return back(agent.id, "tasks", "canceled")


# --- memories -----------------------------------------------------------------------------------------


@router.get("/memories", response_class=HTMLResponse)
async def memories_tab(
    agent_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    end_user: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """The people the agent remembers something about, and what it remembers about the one chosen."""
    agent = await load_agent(found, uow, resources, agent_id)
    service = Memories.of(uow, resources)
    people = await service.people(agent)
    chosen = end_user or (people[0].end_user if people else "")
    memories = await service.of_person(agent, chosen) if chosen else []
    return agent_page(
        request,
        found,
        agent,
        "memories",
        people=people,
        chosen=chosen,
        memories=memories,
        flash=flash(request),
    )


def _back_to_person(agent_id: str, end_user: str) -> RedirectResponse:
    query = urlencode({"note": "forgotten", **({"end_user": end_user} if end_user else {})})
    return RedirectResponse(f"/app/agents/{agent_id}/memories?{query}", status_code=303)


@router.post("/memories/forget")
async def forget_person(
    agent_id: str,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    end_user: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    await Memories.of(uow, resources).forget_person(agent, end_user)
    return _back_to_person(agent.id, "")


@router.post("/memories/{memory_id}/delete")
async def forget_memory(
    agent_id: str,
    memory_id: str,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    end_user: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    await Memories.of(uow, resources).forget(agent, memory_id)
    return _back_to_person(agent.id, end_user)
