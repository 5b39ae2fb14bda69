"""An agent's channels, whatever their kind: list them, change a widget's sites, remove one, and count
their messages per day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from hutch.agents.repository import AgentRepository
from hutch.channels.models import Channel, ChannelType
from hutch.channels.telegram.service import TelegramChannels
from hutch.channels.usage import daily_counts
from hutch.channels.webchat.service import AllowedOrigins, Widgets
from hutch.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.http.authz import Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1/agents/{agent_id}/channels", tags=["channels"])


class ChannelOut(BaseModel):
    id: str
    type: str
    status: str
    bot_username: str | None  # Telegram
    link: str | None  # Telegram: the bot's t.me link
    token: str | None  # web chat: the widget's public token
    snippet: str | None  # web chat: the HTML to paste into the site
    allowed_origins: list[str]  # web chat: the sites that may embed it
    last_error: str | None
    created_at: datetime


class ChannelList(BaseModel):
    items: list[ChannelOut]


class WidgetOrigins(BaseModel):
    allowed_origins: AllowedOrigins = Field(min_length=1, max_length=20)


class DayCountOut(BaseModel):
    day: date
    channel: str
    inbound: int
    outbound: int


class ChannelUsage(BaseModel):
    items: list[DayCountOut]


def widget_snippet(base_url: str, token: str) -> str:
    return f'<script src="{base_url}/widget.js" data-hutch-widget="{token}" async></script>'


def channel_out(channel: Channel, base_url: str) -> ChannelOut:
    webchat = channel.type is ChannelType.WEBCHAT
    return ChannelOut(
        id=channel.id,
        type=channel.type.value,
        status=channel.status.value,
        bot_username=channel.username,
        link=f"https://t.me/{channel.username}" if channel.username else None,
        token=channel.external_id if webchat else None,
        snippet=widget_snippet(base_url, channel.external_id) if webchat else None,
        allowed_origins=list(channel.allowed_origins or []),
        last_error=channel.last_error,
        created_at=channel.created_at,
    )


def telegram_channels(uow: UnitOfWork, resources: Resources) -> TelegramChannels:
    return TelegramChannels.of(uow, resources)


@router.get("", response_model=ChannelList, responses=error_responses(Unauthorized, Forbidden, NotFound))
async def list_channels(
    agent_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep
) -> ChannelList:
    """Where the agent can be reached: its Telegram bots and web chat widgets."""
    channels = await telegram_channels(uow, resources).list(principal, agent_id)
    return ChannelList(items=[channel_out(c, resources.settings.base_url) for c in channels])


@router.patch(
    "/{channel_id}",
    response_model=ChannelOut,
    responses=error_responses(BadRequest, Unauthorized, Forbidden, NotFound),
)
async def update_widget_origins(
    agent_id: str,
    channel_id: str,
    body: WidgetOrigins,
    principal: Writer,
    uow: UoWDep,
    resources: ResourcesDep,
) -> ChannelOut:
    """Change the sites allowed to embed a web chat widget."""
    channel = await Widgets(uow).set_origins(principal, agent_id, channel_id, body.allowed_origins)
    return channel_out(channel, resources.settings.base_url)


@router.delete(
    "/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound, ServiceUnavailable),
)
async def remove_channel(
    agent_id: str, channel_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Disconnect the channel: a bot's webhook is deleted and its token forgotten; a widget stops
    answering on every site."""
    await telegram_channels(uow, resources).remove(principal, agent_id, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _readable_agent(uow: UnitOfWork, principal: Principal, agent_id: str) -> str:
    agent = await AgentRepository(uow.session).get(principal, agent_id)
    if agent is None:
        raise NotFound("Agent")
    return agent.id


@router.get(
    "/usage", response_model=ChannelUsage, responses=error_responses(Unauthorized, Forbidden, NotFound)
)
async def channel_usage(
    agent_id: str, principal: Reader, uow: UoWDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> ChannelUsage:
    """Messages received and sent per day and channel (Telegram, WhatsApp, web chat), newest first."""
    counts = await daily_counts(uow.session, await _readable_agent(uow, principal, agent_id), days)
    return ChannelUsage(items=[DayCountOut(**vars(c)) for c in counts])
