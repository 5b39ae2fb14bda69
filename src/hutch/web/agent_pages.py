"""One agent in the dashboard: chat, settings and avatar (the other tabs are in ``agent_tabs.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from hutch.agents.avatars import Avatars
from hutch.agents.models import Agent, AgentAvatar
from hutch.agents.roles import ROLE_TEMPLATES
from hutch.agents.schemas import AgentUpdate
from hutch.agents.service import org_credentials
from hutch.billing.quotas import Quotas
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.inbox import TakenOver
from hutch.conversations.models import Message, MessageAttachment
from hutch.conversations.repository import ConversationRepository, MessageRepository
from hutch.conversations.service import ConversationService
from hutch.core.errors import BadRequest, HutchError
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.deletion.flow import delete_agent as delete_agent_and_its_parts
from hutch.engine.tools import TOOLS
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.http.uploads import chat_form, is_multipart, validated
from hutch.i18n import N_, _
from hutch.integrations.tools import connected_choices
from hutch.resources import Resources
from hutch.runtimes.service import RuntimeService
from hutch.turns.chat_api import API_CHANNEL, chat_response, end_user_of
from hutch.turns.flow import Answer, TurnFlow
from hutch.turns.media import MediaReader, ReadMedia, Received
from hutch.turns.streaming import sse, stream_turn
from hutch.web.app_pages import agents_service
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, field_errors, page

router = APIRouter(prefix="/app/agents/{agent_id}", include_in_schema=False)
PER_PERSON = ("end_user_messages_per_minute", "end_user_messages_per_day")  # empty: the plan's default
TABS = [
    ("chat", N_("Chat")),
    ("inbox", N_("Inbox")),  # every conversation of this agent, on every channel (the inbox, filtered)
    ("settings", N_("Settings")),
    ("knowledge", N_("Knowledge")),
    ("channels", N_("Channels")),
    ("runtime", N_("Runtime")),
    ("tasks", N_("Tasks")),
    ("memories", N_("Memories")),
]


async def load_agent(found: Viewer, uow: UnitOfWork, resources: Resources, agent_id: str) -> Agent:
    """The agent, in the viewer's org (404 otherwise, as in the API)."""
    return await agents_service(uow, resources).get(found.principal, agent_id)


def agent_page(
    request: Request, found: Viewer, agent: Agent, tab: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return page(
        request,
        "app/agent.html",
        found,
        status_code=status_code,
        section="agents",
        agent=agent,
        tab=tab,
        tabs=TABS,
        welcome=request.query_params.get("welcome") == "1",
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def agent_home(agent_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    return RedirectResponse(f"/app/agents/{agent.id}/chat", status_code=303)


class ChatSent(BaseModel):
    message: str = Field(default="", max_length=20_000)


async def _chat_messages(
    uow: UnitOfWork, agent: Agent, end_user: str
) -> tuple[list[Message], dict[str, list[MessageAttachment]]]:
    """The viewer's open playground conversation, with the files sent in it."""
    conversation = await ConversationRepository(uow.session).open_for(agent.id, API_CHANNEL, end_user)
    if conversation is None:
        return [], {}
    messages = await MessageRepository(uow.session).recent(conversation.id, 50)
    files = await AttachmentRepository(uow.session).of_messages(agent.org_id, [m.id for m in messages])
    return messages, files


async def _chat_page(
    request: Request,
    found: Viewer,
    uow: UnitOfWork,
    resources: Resources,
    agent: Agent,
    refusal: str | None = None,
) -> HTMLResponse:
    messages, files = await _chat_messages(uow, agent, end_user_of(found.principal))
    spec = resources.catalog.find(agent.model)
    return agent_page(
        request,
        found,
        agent,
        "chat",
        messages=messages,
        files=files,
        refusal=refusal,
        model_name=spec.display_name if spec else agent.model,
    )


@router.get("/chat", response_class=HTMLResponse)
async def chat_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    return await _chat_page(request, found, uow, resources, agent)


async def _sent_in_chat(request: Request, resources: Resources) -> tuple[str, Received | None, str | None]:
    """(text, file, refusal) of the playground's form: urlencoded, or multipart with a ``file``."""
    if is_multipart(request):
        form = await chat_form(request, resources.settings)
        if form.refused is not None:
            return "", None, form.refused.refusal
        return validated(ChatSent, form.fields).message, form.file, None
    fields = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    return validated(ChatSent, fields).message, None, None


@router.post("/chat", response_model=None)
async def chat_send(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """The playground: a streamed reply for the page's script, or a plain form post that reloads the page.
    A file may come with the message (or alone); a refused one is answered in the thread, not stored."""
    agent = await load_agent(found, uow, resources, agent_id)
    text, upload, refusal = await _sent_in_chat(request, resources)
    if upload is None and refusal is None and not text.strip():
        raise BadRequest(_("Write a message or attach a file."))
    media: ReadMedia | None = None
    if upload is not None:
        # Read before phase 1, holding no connection (the reader ends this transaction first).
        media = await MediaReader.of(uow, resources).read(agent.org_id, text, [upload])
        refusal, text = media.refusal, media.text
    streamed = "text/event-stream" in request.headers.get("accept", "")
    if refusal is not None:
        if not streamed:
            return await _chat_page(request, found, uow, resources, agent, refusal)
        refused = {
            "conversation_id": None,
            "message": {"content": refusal, "status": "refused"},
            "usage": {"input_tokens": 0, "output_tokens": 0, "cost_micro_usd": 0},
        }
        return StreamingResponse(
            iter([sse("done", refused)]),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    flow = TurnFlow(uow, resources)
    turn = await flow.begin(agent, API_CHANNEL, end_user_of(found.principal), text, media=media)  # committed
    if turn.held:  # a member holds this conversation: refused before any stream starts
        raise TakenOver()
    if not streamed:
        await flow.answer(turn)
        return RedirectResponse(f"/app/agents/{agent.id}/chat#end", status_code=303)

    async def done(answer: Answer) -> dict[str, Any]:
        return chat_response(answer).model_dump(mode="json")

    events = stream_turn(flow, turn, done)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/chat/reset")
async def chat_reset(agent_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    await ConversationService(uow.session).reset_open(agent, API_CHANNEL, end_user_of(found.principal))
    return RedirectResponse(f"/app/agents/{agent.id}/chat", status_code=303)


async def _settings_context(uow: UnitOfWork, resources: Resources, agent: Agent) -> dict[str, Any]:
    keys = await org_credentials(uow.session, resources.secret_box, agent.org_id)
    models = [
        (spec, resources.llm.available(spec.provider, keys)) for spec in resources.catalog.models.values()
    ]
    avatar = await uow.session.get(AgentAvatar, agent.id)
    plan = await Quotas(uow.session, resources.plans).plan_of(agent.org_id)
    return {
        "plan_per_person": (plan.limits.end_user_messages_per_minute, plan.limits.end_user_messages_per_day),
        "models": models,
        "roles": list(ROLE_TEMPLATES.values()),
        "tools": TOOLS.specs(),
        "connected_tools": await connected_choices(uow.session, agent.org_id),
        "has_avatar": avatar is not None,
    }


@router.get("/settings", response_class=HTMLResponse)
async def settings_tab(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    agent = await load_agent(found, uow, resources, agent_id)
    context = await _settings_context(uow, resources, agent)
    saved = request.query_params.get("saved") == "1"
    return agent_page(
        request, found, agent, "settings", errors={}, flash=_("Saved.") if saved else None, **context
    )


@router.post("/settings", response_class=HTMLResponse)
async def settings_save(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    form = await request.form()
    fields = {
        key: str(form[key])
        for key in (
            "name",
            "role",
            "system_prompt",
            "model",
            "fallback_model",
            "temperature",
            "max_tokens",
            "audience",
            "placement",
            "status",
            *PER_PERSON,
        )
        if key in form
    }
    data: dict[str, Any] = {k: v for k, v in fields.items() if v != ""}
    for nullable in ("fallback_model", *PER_PERSON):  # empty: none (a per-person limit: the plan's)
        if fields.get(nullable) == "":
            data[nullable] = None
    data["tools"] = [str(t) for t in form.getlist("tools")]
    errors: dict[str, str] = {}
    try:
        update = AgentUpdate.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
    else:
        errors = await _save_settings(uow, resources, found.principal, agent, update)
    if errors:
        agent = await load_agent(found, uow, resources, agent_id)
        context = await _settings_context(uow, resources, agent)
        return agent_page(
            request, found, agent, "settings", status_code=422, errors=errors, values=fields, **context
        )
    return RedirectResponse(f"/app/agents/{agent.id}/settings?saved=1", status_code=303)


async def _save_settings(
    uow: UnitOfWork, resources: Resources, principal: Principal, agent: Agent, update: AgentUpdate
) -> dict[str, str]:
    """Save the settings form; a new placement requests or releases the dedicated runtime as the API's does
    (a refusal, say the plan allows none, undoes the whole save). The errors to show, by field."""
    placement = update.placement if update.placement is not agent.placement else None
    changes = update.model_copy(update={"placement": None})
    saved = await attempt(uow, agents_service(uow, resources).update(principal, agent.id, changes))
    if isinstance(saved, HutchError):
        return {getattr(saved, "field", "form"): error_text(saved)}
    if placement is not None:
        placed = await attempt(uow, RuntimeService.of(uow, resources).place(principal, agent.id, placement))
        if isinstance(placed, HutchError):
            return {"placement": error_text(placed)}
    return {}


@router.post("/avatar", response_class=HTMLResponse)
async def avatar_upload(
    agent_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    upload = (await request.form()).get("file")
    error = None
    if not isinstance(upload, UploadFile):
        error = _("Choose a picture to upload.")
    else:
        stored = await attempt(uow, Avatars(uow.session).put(agent, await upload.read()))
        if isinstance(stored, HutchError):
            error = error_text(stored)
    if error is not None:
        agent = await load_agent(found, uow, resources, agent_id)
        context = await _settings_context(uow, resources, agent)
        return agent_page(
            request, found, agent, "settings", status_code=422, errors={"avatar": error}, **context
        )
    return RedirectResponse(f"/app/agents/{agent.id}/settings?saved=1", status_code=303)


@router.get("/avatar.png")
async def avatar_image(agent_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    avatar = await Avatars(uow.session).get(agent)
    if avatar is None:
        return Response(status_code=404)
    return Response(
        avatar.data, media_type=avatar.content_type, headers={"Cache-Control": "private, max-age=60"}
    )


@router.post("/delete")
async def delete_agent(
    agent_id: str,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    agent = await load_agent(found, uow, resources, agent_id)
    if confirm != agent.name:
        return RedirectResponse(f"/app/agents/{agent.id}/settings?confirm=1", status_code=303)
    await delete_agent_and_its_parts(uow, resources, found.principal, agent.id)
    return RedirectResponse("/app/agents", status_code=303)
