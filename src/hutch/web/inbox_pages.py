"""The inbox in the dashboard: every conversation of the org's agents, one conversation with its thread and
new messages as they arrive, and taking it over to answer the person, through the API's ``InboxService``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from hutch.agents.models import Agent
from hutch.conversations.attachments import file_response
from hutch.conversations.dependencies import InboxServiceDep
from hutch.conversations.inbox import InboxService, export_filename
from hutch.conversations.inbox_repository import InboxFilter
from hutch.conversations.live import message_events
from hutch.conversations.models import ConversationStatus
from hutch.conversations.schemas import HumanReply, InboxItem
from hutch.core.bounds import INT_MAX, EventPosition
from hutch.core.errors import HutchError, NotFound
from hutch.core.principal import Principal
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _
from hutch.web.agent_pages import load_agent
from hutch.web.app_pages import agents_service
from hutch.web.deps import Viewer, ViewerDep, attempt, error_text, page

router = APIRouter(prefix="/app", include_in_schema=False)
PAGE_SIZE = 25
CHANNELS = {
    "telegram": "Telegram",
    "whatsapp": "WhatsApp",
    "webchat": N_("Website widget"),
    "voice": N_("Voice"),
    "api": N_("API and dashboard chat"),
    "openai_api": N_("OpenAI-compatible API"),
    "anthropic_api": N_("Anthropic-compatible API"),
    "task": N_("Tasks"),
}
STATUSES = {
    ConversationStatus.OPEN: N_("Open"),
    ConversationStatus.NEEDS_HUMAN: N_("Needs a person"),
    ConversationStatus.TAKEN_OVER: N_("Taken over"),
    ConversationStatus.CLOSED: N_("Closed"),
}
NOTES = {
    "taken": N_("You hold this conversation: the agent stays silent until you hand it back."),
    "sent": N_("Reply sent."),
    "released": N_("Handed back: the agent answers again, with your messages in its history."),
    "closed": N_("Closed: the person's next message starts a new conversation."),
    "reopened": N_("Reopened."),
}
Filter = Annotated[str, Query(max_length=200)]


@dataclass
class Filters:
    """The inbox's filters as the form holds them, and what is wrong with any of them."""

    agent: str = ""
    channel: str = ""
    status: str = ""
    q: str = ""
    since: str = ""
    until: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **changed: Any) -> str:
        values = {k: v for k, v in self.form().items() if v} | {k: v for k, v in changed.items() if v}
        return urlencode(values)

    def form(self) -> dict[str, str]:
        return {
            "agent": self.agent,
            "channel": self.channel,
            "status": self.status,
            "q": self.q,
            "since": self.since,
            "until": self.until,
        }

    @property
    def active(self) -> bool:
        return any(v for k, v in self.form().items() if k != "agent")

    def parsed(self) -> InboxFilter:
        """What the service filters by; fields in error are left out."""
        status = None
        if self.status:
            try:
                status = ConversationStatus(self.status)
            except ValueError:
                self.errors["status"] = _("Choose a status from the list.")
        since, until = self._day("since"), self._day("until")
        if since is not None and until is not None and until < since:
            self.errors["until"] = _("The last day comes on or after the first.")
            until = None
        return InboxFilter(
            agent_id=self.agent or None,
            channel=self.channel or None,
            status=status,
            q=self.q.strip() or None,
            since=datetime.combine(since, time(), UTC) if since else None,
            # The whole last day: activity before the start of the next.
            until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        )

    def _day(self, name: str) -> date | None:
        value = getattr(self, name)
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.errors[name] = _("Enter a date like 2026-12-31.")
            return None


async def _inbox_page(
    request: Request,
    found: Viewer,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxService,
    filters: Filters,
    page_number: int,
    agent: Agent | None = None,
) -> HTMLResponse:
    wanted = filters.parsed()
    listing = await inbox.page(found.principal, wanted, (page_number - 1) * PAGE_SIZE, PAGE_SIZE)
    agents, _ = await agents_service(uow, resources).page(found.principal, 0, 200)
    pages = max(1, -(-listing.total // PAGE_SIZE))
    return page(
        request,
        "app/inbox.html",
        found,
        status_code=422 if filters.errors else 200,
        section="inbox",
        items=listing.items,
        total=listing.total,
        page_number=page_number,
        pages=pages,
        filters=filters,
        agent=agent,
        agent_names={a.id: a.name for a in agents},
        channels=CHANNELS,
        statuses=STATUSES,
        base="/app/inbox" if agent is None else f"/app/agents/{agent.id}/inbox",
    )


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_list(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
    agent: Filter = "",
    channel: Filter = "",
    status: Filter = "",
    q: Filter = "",
    since: Filter = "",
    until: Filter = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Every conversation of the org's agents, newest activity first, with filters and search."""
    filters = Filters(agent, channel, status, q, since, until)
    return await _inbox_page(request, found, uow, resources, inbox, filters, page)


@router.get("/agents/{agent_id}/inbox", response_class=HTMLResponse)
async def agent_inbox(
    agent_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
    channel: Filter = "",
    status: Filter = "",
    q: Filter = "",
    since: Filter = "",
    until: Filter = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """One agent's conversations (another org's agent: 404)."""
    agent = await load_agent(found, uow, resources, agent_id)
    filters = Filters(agent.id, channel, status, q, since, until)
    return await _inbox_page(request, found, uow, resources, inbox, filters, page, agent)


# --- one conversation ----------------------------------------------------------------------------------


async def _conversation_page(
    request: Request,
    found: Viewer,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxService,
    conversation_id: str,
    *,
    error: str = "",
    reply: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    shown = await inbox.get(found.principal, conversation_id)
    agent = await agents_service(uow, resources).get(found.principal, shown.agent_id)
    note = _(NOTES[key]) if (key := request.query_params.get("note", "")) in NOTES and not error else None
    return page(
        request,
        "app/inbox_conversation.html",
        found,
        status_code=status_code,
        section="inbox",
        conversation=shown,
        agent=agent,
        members=await inbox.member_names(found.principal),
        channels=CHANNELS,
        statuses=STATUSES,
        holding=shown.taken_over_by == found.user_id,
        last_seq=shown.messages[-1].seq if shown.messages else 0,
        flash=note,
        error=error,
        reply=reply,
    )


@router.get("/inbox/{conversation_id}", response_class=HTMLResponse)
async def conversation(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> HTMLResponse:
    """The whole thread, who the person is, and what a member can do with it."""
    return await _conversation_page(request, found, uow, resources, inbox, conversation_id)


@router.get("/inbox/{conversation_id}/events")
async def conversation_events(
    conversation_id: str,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
    after: Annotated[int | None, Query(ge=0, le=INT_MAX)] = None,
    last_event_id: EventPosition = None,
) -> StreamingResponse:
    """New messages of the conversation as server-sent events, for the page's live thread: the same stream
    as the API's, opened with the dashboard's session. ``after``: the last message the page shows."""
    item = await inbox.item(found.principal, conversation_id)
    await uow.checkpoint()  # the stream holds no database connection
    seen = last_event_id if last_event_id is not None else after
    events = message_events(resources.message_watch, item.id, item.message_count if seen is None else seen)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/inbox/{conversation_id}/export")
async def export_conversation(
    conversation_id: str,
    found: ViewerDep,
    inbox: InboxServiceDep,
    format: Literal["json", "text"] = "json",
) -> Response:
    """The conversation as a file: JSON (as the API shows it) or plain text."""
    if format == "text":
        body = await inbox.export_text(found.principal, conversation_id)
        response: Response = PlainTextResponse(body, media_type="text/plain; charset=utf-8")
        extension = "txt"
    else:
        body = await inbox.export_json(found.principal, conversation_id)
        response, extension = Response(body, media_type="application/json"), "json"
    filename = export_filename(conversation_id, extension)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@router.get("/inbox/{conversation_id}/attachments/{attachment_id}")
async def attachment(
    conversation_id: str, attachment_id: str, found: ViewerDep, inbox: InboxServiceDep
) -> Response:
    """A file sent in the conversation: images and audio shown inline, documents downloaded."""
    sent = await inbox.attachment(found.principal, conversation_id, attachment_id)
    return file_response(sent)


async def _act(
    request: Request,
    found: Viewer,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxService,
    conversation_id: str,
    done: Any,
    note: str,
) -> Response:
    """Run one change; its refusal (held by another member, closed, ...) shows on the conversation's page."""
    outcome = await attempt(uow, done)
    if isinstance(outcome, HutchError):
        return await _conversation_page(
            request,
            found,
            uow,
            resources,
            inbox,
            conversation_id,
            error=error_text(outcome),
            status_code=outcome.status_code,
        )
    target = outcome.id if isinstance(outcome, InboxItem) else conversation_id
    return RedirectResponse(f"/app/inbox/{target}?note={note}", status_code=303)


@router.post("/inbox/{conversation_id}/takeover", response_class=HTMLResponse)
async def take_over(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    action = inbox.take_over(found.principal, conversation_id)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "taken")


@router.post("/inbox/{conversation_id}/reply", response_class=HTMLResponse)
async def reply(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
    content: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    try:
        text = HumanReply(content=content).content
    except ValidationError as exc:
        problem = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        return await _conversation_page(
            request,
            found,
            uow,
            resources,
            inbox,
            conversation_id,
            error=_("The reply cannot be sent: {problem}.").format(problem=problem),
            reply=content,
            status_code=422,
        )
    action = inbox.reply(found.principal, conversation_id, text)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "sent")


@router.post("/inbox/{conversation_id}/release", response_class=HTMLResponse)
async def release(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    action = inbox.release(found.principal, conversation_id)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "released")


@router.post("/inbox/{conversation_id}/close", response_class=HTMLResponse)
async def close(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    action = inbox.close(found.principal, conversation_id)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "closed")


@router.post("/inbox/{conversation_id}/reopen", response_class=HTMLResponse)
async def reopen(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    action = inbox.reopen(found.principal, conversation_id)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "reopened")


@router.post("/inbox/{conversation_id}/block", response_class=HTMLResponse)
async def block(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    """Stop answering this person (and stop paying for them) on this channel, until unblocked."""
    action = _with_end_user(inbox, found, conversation_id, inbox.block)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "blocked")


@router.post("/inbox/{conversation_id}/unblock", response_class=HTMLResponse)
async def unblock(
    conversation_id: str,
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    inbox: InboxServiceDep,
) -> Response:
    action = _with_end_user(inbox, found, conversation_id, inbox.unblock)
    return await _act(request, found, uow, resources, inbox, conversation_id, action, "unblocked")


async def _with_end_user(
    inbox: InboxService, found: Viewer, conversation_id: str, act: Callable[[Principal, str], Awaitable[Any]]
) -> None:
    """Block or unblock the person of a conversation the viewer may see (404 otherwise)."""
    person = (await inbox.item(found.principal, conversation_id)).end_user
    if person.id is None:
        raise NotFound("End user")
    await act(found.principal, person.id)
