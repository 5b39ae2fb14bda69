"""The web chat widget: created by the agent's owner, then used by anonymous visitors of their site.

The visitor routes are public and called cross-origin from the customer's pages; :mod:`.cors` answers
their preflights, and each route checks the page's origin against the widget's allowed sites.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from hutch.agents.models import Agent
from hutch.channels.models import Channel
from hutch.channels.schemas import ChannelOut, channel_out
from hutch.channels.usage import counted_messages
from hutch.channels.webchat.service import (
    CHANNEL,
    AllowedOrigins,
    UnknownWidget,
    Widgets,
    check_available,
    check_origin,
    check_rates,
    visitor_end_user,
)
from hutch.conversations.attachments import file_response
from hutch.conversations.models import Message
from hutch.conversations.repository import ConversationRepository, MessageRepository
from hutch.conversations.service import ConversationService
from hutch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HutchError,
    NotFound,
    PaymentRequired,
    RateLimited,
    Unauthorized,
    error_responses,
)
from hutch.core.request_context import client_ip
from hutch.db.carried import Carried
from hutch.db.engine import UnitOfWork
from hutch.http.authz import Writer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.http.uploads import chat_form, is_multipart, validated
from hutch.i18n import N_, gettext, set_language
from hutch.resources import Resources
from hutch.turns.flow import Answer, TurnFlow
from hutch.turns.inbox import notice
from hutch.turns.language import browser_choice, notice_language
from hutch.turns.media import MediaReader, ReadMedia, Received
from hutch.turns.streaming import sse, stream_turn

WIDGET_SCRIPT = Path(__file__).with_name("static") / "widget.js"  # the script sites embed
router = APIRouter(tags=["channels"])
VISITOR_ERRORS = error_responses(BadRequest, Forbidden, UnknownWidget, Conflict, PaymentRequired, RateLimited)
HISTORY_LIMIT = 50
# What the widget makes: a random id of its own alphabet, kept in the browser.
VisitorIdText = Annotated[str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
VisitorId = Annotated[VisitorIdText, Query()]


class WidgetCreate(BaseModel):
    allowed_origins: AllowedOrigins = Field(min_length=1, max_length=20)


class WidgetConfig(BaseModel):
    agent_name: str
    greeting: str
    brand_name: str  # the operator's product
    primary_color: str | None = None  # the brand's colour for the bubble; None: the widget's own blue
    accent_ink: str | None = None  # text on that colour
    powered_by: str | None = None  # the discreet credit line, unless the operator turned it off
    # The bubble's own words (buttons, labels, errors) in the org's language or the visitor's, by key.
    texts: dict[str, str] = Field(default_factory=dict)


class VisitorMessage(BaseModel):
    visitor_id: VisitorIdText
    text: str = Field(min_length=1, max_length=4000)


class VisitorUpload(BaseModel):
    """The text fields of a multipart message: the text may be left out when a file is sent."""

    visitor_id: VisitorIdText
    text: str = Field(default="", max_length=4000)


VISITOR_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "visitor_id": {"type": "string"},
        "text": {"type": "string", "maxLength": 4000, "description": "optional with a file"},
        "file": {"type": "string", "format": "binary", "description": "an image, audio, PDF or text file"},
    },
    "required": ["visitor_id"],
}


class VisitorReset(BaseModel):
    visitor_id: VisitorIdText


class WidgetFile(BaseModel):
    """A file the visitor sent; ``url`` (with ``?visitor_id=``) answers it to that visitor only."""

    id: str
    kind: str  # image | audio | document
    filename: str
    content_type: str
    url: str


class WidgetLine(BaseModel):
    role: str  # user | assistant | human (a person from the team)
    content: str
    attachments: list[WidgetFile] = []


class WidgetHistory(BaseModel):
    items: list[WidgetLine]


@router.post(
    "/api/v1/agents/{agent_id}/channels/webchat",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    responses=error_responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict),
)
async def create_widget(
    agent_id: str, body: WidgetCreate, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> ChannelOut:
    """A chat bubble for a public agent on your own site: paste the returned `snippet` into its pages.
    Only the listed sites (like https://www.example.com) may use it."""
    channel = await Widgets(uow).create(principal, agent_id, body.allowed_origins)
    return channel_out(channel, resources.settings.base_url)


@router.get("/widget.js", include_in_schema=False)
async def widget_script() -> FileResponse:
    """The widget's script; the snippet loads it from the customer's pages."""
    return FileResponse(
        WIDGET_SCRIPT,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _visitor_widget(uow: UnitOfWork, token: str, request: Request) -> tuple[Channel, Agent]:
    channel, agent = await Widgets(uow).open(token)
    check_origin(channel, request.headers.get("origin"))
    return channel, agent


# What widget.js says by itself; it shows these English words until the configuration arrives.
WIDGET_TEXTS = {
    "open_chat": N_("Open chat"),
    "chat": N_("Chat"),
    "new_conversation": N_("New conversation"),
    "remove_file": N_("Remove the attached file"),
    "remove": N_("Remove"),
    "attach_file": N_("Attach a file"),
    "write_message": N_("Write a message"),
    "message": N_("Message"),
    "send": N_("Send"),
    "image_sent": N_("Image sent: "),
    "attached": N_("Attached: "),
    "failed": N_("Something went wrong. Please try again."),
    "unavailable": N_("The chat is not available right now."),
    "not_sent": N_("The message could not be sent. Check your connection and try again."),
}


@router.get("/api/v1/widget/{token}", response_model=WidgetConfig, responses=VISITOR_ERRORS)
async def widget_config(token: str, request: Request, uow: UoWDep, resources: ResourcesDep) -> WidgetConfig:
    """What the bubble shows before the first message (in the org's language, or the visitor's)."""
    _channel, agent = await _visitor_widget(uow, token, request)
    await _speak_to_visitor(request, uow, resources, agent)
    greeting = gettext("Hello! I am {name}. How can I help?").format(name=agent.name)
    brand = resources.brand
    return WidgetConfig(
        agent_name=agent.name,
        greeting=greeting,
        brand_name=brand.name,
        primary_color=brand.primary_color,
        accent_ink=brand.accent_ink if brand.primary_color else None,
        powered_by=(
            gettext("Powered by {product}").format(product=brand.software) if brand.powered_by_line else None
        ),
        texts={key: gettext(text) for key, text in WIDGET_TEXTS.items()},
    )


async def _speak_to_visitor(request: Request, uow: UnitOfWork, resources: Resources, agent: Agent) -> None:
    """What the widget says by itself (greeting, limits, refusals): the org's language, or the visitor's
    browser's when the org allows it."""
    visitor_language = browser_choice(resources.settings, request.headers.get("accept-language"))
    settings = resources.settings
    set_language(settings, await notice_language(uow.session, settings, agent.org_id, visitor_language))


@router.get("/api/v1/widget/{token}/messages", response_model=WidgetHistory, responses=VISITOR_ERRORS)
async def widget_history(token: str, visitor_id: VisitorId, request: Request, uow: UoWDep) -> WidgetHistory:
    """The visitor's open conversation, so the bubble shows it again after a page load."""
    channel, agent = await _visitor_widget(uow, token, request)
    end_user = visitor_end_user(channel, visitor_id)
    conversation = await ConversationRepository(uow.session).open_for(agent.id, CHANNEL, end_user)
    if conversation is None:
        return WidgetHistory(items=[])
    messages = await MessageRepository(uow.session).recent(conversation.id, HISTORY_LIMIT)
    files = await Widgets(uow).visitor_files(conversation.org_id, [m.id for m in messages])
    return WidgetHistory(
        items=[
            WidgetLine(
                role=m.role.value,
                content=m.content,
                attachments=[
                    WidgetFile(
                        id=f.id,
                        kind=f.kind.value,
                        filename=f.filename,
                        content_type=f.content_type,
                        url=f"/api/v1/widget/{token}/attachments/{f.id}",
                    )
                    for f in files.get(m.id, ())
                ],
            )
            for m in messages
        ]
    )


@router.get(
    "/api/v1/widget/{token}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/octet-stream": {}}}, **VISITOR_ERRORS},
)
async def widget_attachment(
    token: str, attachment_id: str, visitor_id: VisitorId, request: Request, uow: UoWDep
) -> Response:
    """A file the visitor sent (the bubble shows images as thumbnails); another visitor's is not found."""
    channel, _ = await _visitor_widget(uow, token, request)
    sent = await Widgets(uow).visitor_file(channel, visitor_id, attachment_id)
    return file_response(sent, cross_origin=True)


def _said(content: str, status: str) -> StreamingResponse:
    """An answer given without a turn (a refused file), as the one ``done`` event of a reply."""

    async def said() -> AsyncIterator[str]:
        yield sse("done", {"content": content, "status": status})

    return StreamingResponse(said(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post(
    "/api/v1/widget/{token}/messages",
    responses={
        **VISITOR_ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "The reply as it is written"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": VisitorMessage.model_json_schema()},
                "multipart/form-data": {"schema": VISITOR_FORM_SCHEMA},
            },
        }
    },
)
async def widget_message(
    token: str, request: Request, uow: UoWDep, resources: ResourcesDep
) -> StreamingResponse:
    """A visitor's message: JSON `{visitor_id, text}`, or `multipart/form-data` with `visitor_id`, `text`
    and one `file` (an image, a voice recording or audio file, a PDF or text file). The reply streams as
    `delta` events (`{"content": ...}`) and ends with one `done` event (`{"content", "status"}`); a refused
    file (too large, a kind not accepted) is answered by a `done` event with status `refused` and nothing
    is stored; a refusal of the message itself (limits, paused agent) is a JSON error whose detail is
    written for the visitor."""
    channel, agent = await _visitor_widget(uow, token, request)
    await _speak_to_visitor(request, uow, resources, agent)
    upload: Received | None = None
    if is_multipart(request):
        form = await chat_form(request, resources.settings)
        if form.refused is not None and form.refused.refusal is not None:
            return _said(form.refused.refusal, "refused")
        sent = validated(VisitorUpload, form.fields)
        if form.file is None and not sent.text.strip():
            raise BadRequest("Write a message or attach a file.")
        visitor_id, text, upload = sent.visitor_id, sent.text, form.file
    else:
        body = validated(VisitorMessage, await request.body())
        visitor_id, text = body.visitor_id, body.text
    end_user = visitor_end_user(channel, visitor_id)
    check_available(agent)
    await check_rates(resources.rate_limiter, resources.settings, channel, visitor_id, client_ip(request))
    media: ReadMedia | None = None
    if upload is not None:
        # Read before phase 1, holding no connection (the reader ends this transaction first).
        media = await MediaReader.of(uow, resources).read(agent.org_id, text, [upload])
        if media.refusal is not None:
            return _said(media.refusal, "refused")
        text = media.text
    flow = TurnFlow(uow, resources)

    def counted_in(message: Message) -> Carried:
        return counted_messages(agent.org_id, agent.id, CHANNEL, inbound=1)

    try:
        # Committed: the visitor's message is safe before the model runs (made durable by the answer's).
        turn = await flow.begin(
            agent, CHANNEL, end_user, text, caller_waits=True, record=counted_in, media=media
        )
    except HutchError as refused:
        refused.detail = notice(refused)  # plans and upgrades are for the owner, not the visitor
        raise
    if turn.held:  # a person from the team answers; the widget shows their messages as they come
        return _said("", "held")

    async def done(answer: Answer) -> dict[str, Any]:
        assert answer.message is not None
        return {"content": answer.message.content, "status": answer.message.status}

    def counted_out(_: str) -> Carried:
        return counted_messages(agent.org_id, agent.id, CHANNEL, outbound=1)

    events = stream_turn(flow, turn, done, carrying=counted_out)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post(
    "/api/v1/widget/{token}/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=VISITOR_ERRORS,
)
async def widget_reset(token: str, body: VisitorReset, request: Request, uow: UoWDep) -> None:
    """The visitor starts a new conversation (the old one stays in the owner's history)."""
    channel, agent = await _visitor_widget(uow, token, request)
    await ConversationService(uow.session).reset_open(
        agent, CHANNEL, visitor_end_user(channel, body.visitor_id)
    )
