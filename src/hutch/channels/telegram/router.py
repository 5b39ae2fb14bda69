"""Telegram: connect an agent's own bot, list and remove channels, and the webhook Telegram calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from hutch.channels.models import Channel
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.telegram.service import TelegramChannels, accept_update
from hutch.core.authz import Reader, Writer
from hutch.core.dependencies import ResourcesDep, UoWDep
from hutch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.db.engine import UnitOfWork
from hutch.resources import Resources

router = APIRouter(tags=["channels"])
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramConnect(BaseModel):
    bot_token: str = Field(min_length=20, max_length=200, pattern=r"^\d+:[A-Za-z0-9_-]+$")


class ChannelOut(BaseModel):
    id: str
    type: str
    status: str
    bot_username: str
    link: str
    last_error: str | None
    created_at: datetime


class ChannelList(BaseModel):
    items: list[ChannelOut]


def _out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        type=channel.type.value,
        status=channel.status.value,
        bot_username=channel.username,
        link=f"https://t.me/{channel.username}",
        last_error=channel.last_error,
        created_at=channel.created_at,
    )


def _channels(uow: UnitOfWork, resources: Resources) -> TelegramChannels:
    gateway = TelegramGateway(resources.settings.telegram_api_base)
    return TelegramChannels(uow, resources.settings, resources.secret_box, gateway)


@router.post(
    "/api/v1/agents/{agent_id}/channels/telegram",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    responses=error_responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ServiceUnavailable),
)
async def connect_telegram(
    agent_id: str, body: TelegramConnect, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> ChannelOut:
    """Put the agent on Telegram with your own bot (from @BotFather). The token is checked and stored
    encrypted, never shown again; Hutch sets the bot's webhook."""
    return _out(await _channels(uow, resources).connect(principal, agent_id, body.bot_token))


@router.get(
    "/api/v1/agents/{agent_id}/channels",
    response_model=ChannelList,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def list_channels(
    agent_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep
) -> ChannelList:
    """Where the agent can be reached."""
    return ChannelList(items=[_out(c) for c in await _channels(uow, resources).list(principal, agent_id)])


@router.delete(
    "/api/v1/agents/{agent_id}/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound, ServiceUnavailable),
)
async def remove_channel(
    agent_id: str, channel_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Disconnect the channel: the bot's webhook is deleted and its token forgotten."""
    await _channels(uow, resources).remove(principal, agent_id, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/telegram/{channel_id}", responses=error_responses(Forbidden))
async def telegram_webhook(channel_id: str, request: Request, uow: UoWDep) -> dict[str, Any]:
    """Telegram's updates for one channel: verified by the secret token, stored, answered by a job."""
    secret = request.headers.get(SECRET_HEADER)
    try:
        update = await request.json()
    except ValueError:
        update = None
    if not isinstance(update, dict):
        update = {}
    await accept_update(uow, channel_id, secret, update)
    return {"ok": True}
