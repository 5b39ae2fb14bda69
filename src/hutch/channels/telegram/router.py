"""Telegram: connect an agent's own bot, and the webhook Telegram calls (own bots and the platform bot)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from hutch.channels.dependencies import TelegramChannelsDep
from hutch.channels.schemas import ChannelOut, channel_out
from hutch.channels.telegram.service import accept_update
from hutch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.http.authz import Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(tags=["channels"])
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramConnect(BaseModel):
    bot_token: str = Field(min_length=20, max_length=200, pattern=r"^\d+:[A-Za-z0-9_-]+$")


@router.post(
    "/api/v1/agents/{agent_id}/channels/telegram",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    responses=error_responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ServiceUnavailable),
)
async def connect_telegram(
    agent_id: str,
    body: TelegramConnect,
    principal: Writer,
    resources: ResourcesDep,
    telegram: TelegramChannelsDep,
) -> ChannelOut:
    """Put the agent on Telegram with your own bot (from @BotFather). The token is checked and stored
    encrypted, never shown again; Hutch sets the bot's webhook."""
    channel = await telegram.connect(principal, agent_id, body.bot_token)
    return channel_out(channel, resources.settings.base_url)


@router.post("/webhooks/telegram/{channel_id}", responses=error_responses(Forbidden))
async def telegram_webhook(
    channel_id: str, request: Request, uow: UoWDep, resources: ResourcesDep
) -> dict[str, Any]:
    """Telegram's updates for one channel: verified by the secret token, stored, answered by a job."""
    secret = request.headers.get(SECRET_HEADER)
    try:
        update = await request.json()
    except ValueError:
        update = None
    if not isinstance(update, dict):
        update = {}
    await accept_update(uow, resources.jobs, resources.settings, channel_id, secret, update)
    return {"ok": True}
