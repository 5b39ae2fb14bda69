"""The web chat widget: created by the agent's owner, then used by anonymous visitors of their site.

The visitor routes are public and called cross-origin from the customer's pages; :mod:`.cors` answers
their preflights, and each route checks the page's origin against the widget's allowed sites.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from hutch.agents.models import Agent
from hutch.channels.models import Channel
from hutch.channels.schemas import ChannelOut, channel_out
from hutch.channels.usage import count_messages, counted_messages
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
from hutch.turns.flow import Answer, TurnFlow
from hutch.turns.inbox import notice
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


class VisitorMessage(BaseModel):
    visitor_id: VisitorIdText
    text: str = Field(min_length=1, max_length=4000)


class VisitorReset(BaseModel):
    visitor_id: VisitorIdText


class WidgetLine(BaseModel):
    role: str  # user | assistant | human (a person from the team)
    content: str


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


@router.get("/api/v1/widget/{token}", response_model=WidgetConfig, responses=VISITOR_ERRORS)
async def widget_config(token: str, request: Request, uow: UoWDep) -> WidgetConfig:
    """What the bubble shows before the first message."""
    _, agent = await _visitor_widget(uow, token, request)
    return WidgetConfig(agent_name=agent.name, greeting=f"Hello! I am {agent.name}. How can I help?")


@router.get("/api/v1/widget/{token}/messages", response_model=WidgetHistory, responses=VISITOR_ERRORS)
async def widget_history(token: str, visitor_id: VisitorId, request: Request, uow: UoWDep) -> WidgetHistory:
    """The visitor's open conversation, so the bubble shows it again after a page load."""
    channel, agent = await _visitor_widget(uow, token, request)
    end_user = visitor_end_user(channel, visitor_id)
    conversation = await ConversationRepository(uow.session).open_for(agent.id, CHANNEL, end_user)
    if conversation is None:
        return WidgetHistory(items=[])
    messages = await MessageRepository(uow.session).recent(conversation.id, HISTORY_LIMIT)
    return WidgetHistory(items=[WidgetLine(role=m.role.value, content=m.content) for m in messages])


@router.post(
    "/api/v1/widget/{token}/messages",
    responses={
        **VISITOR_ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "The reply as it is written"},
    },
)
async def widget_message(
    token: str, body: VisitorMessage, request: Request, uow: UoWDep, resources: ResourcesDep
) -> StreamingResponse:
    """A visitor's message. The reply streams as `delta` events (`{"content": ...}`) and ends with one
    `done` event (`{"content", "status"}`); a refusal (limits, paused agent) is a JSON error whose detail
    is written for the visitor."""
    channel, agent = await _visitor_widget(uow, token, request)
    end_user = visitor_end_user(channel, body.visitor_id)
    check_available(agent)
    await check_rates(
        resources.rate_limiter, resources.settings, channel, body.visitor_id, client_ip(request)
    )
    flow = TurnFlow(uow, resources)

    async def counted_in(uow: UnitOfWork, message: Message) -> None:
        await count_messages(uow.session, agent.org_id, agent.id, CHANNEL, inbound=1)

    try:
        # Committed: the visitor's message is safe before the model runs (made durable by the answer's).
        turn = await flow.begin(agent, CHANNEL, end_user, body.text, caller_waits=True, record=counted_in)
    except HutchError as refused:
        refused.detail = notice(refused)  # plans and upgrades are for the owner, not the visitor
        raise
    if turn.held:  # a person from the team answers; the widget shows their messages as they come

        async def held() -> AsyncIterator[str]:
            yield sse("done", {"content": "", "status": "held"})

        return StreamingResponse(
            held(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

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
