"""An agent's channels, whatever their kind: list them, change a widget's sites, remove one, and count
their messages per day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hutch.agents.repository import AgentRepository
from hutch.channels.dependencies import TelegramChannelsDep
from hutch.channels.schemas import (
    ChannelList,
    ChannelOut,
    ChannelUsage,
    DayCountOut,
    WidgetOrigins,
    channel_out,
)
from hutch.channels.usage import daily_counts
from hutch.channels.webchat.service import Widgets
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

router = APIRouter(prefix="/api/v1/agents/{agent_id}/channels", tags=["channels"])


@router.get("", response_model=ChannelList, responses=error_responses(Unauthorized, Forbidden, NotFound))
async def list_channels(
    agent_id: str, principal: Reader, resources: ResourcesDep, telegram: TelegramChannelsDep
) -> ChannelList:
    """Where the agent can be reached: its Telegram bots and web chat widgets."""
    channels = await telegram.list(principal, agent_id)
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
    agent_id: str, channel_id: str, principal: Writer, telegram: TelegramChannelsDep
) -> Response:
    """Disconnect the channel: a bot's webhook is deleted and its token forgotten; a widget stops
    answering on every site."""
    await telegram.remove(principal, agent_id, channel_id)
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
