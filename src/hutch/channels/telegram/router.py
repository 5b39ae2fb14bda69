"""Telegram: connect an agent's own bot, and the webhook Telegram calls (own bots and the platform bot)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from hutch.channels.dependencies import ManagedBotsDep, TelegramChannelsDep
from hutch.channels.schemas import ChannelOut, channel_out
from hutch.channels.telegram.service import accept_update
from hutch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
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


class ManagedBotLink(BaseModel):
    link: str = Field(
        description="https://t.me/<platform bot>?start=<code>: opens the platform bot in Telegram."
    )
    expires_at: datetime


class Reconnected(BaseModel):
    channel: ChannelOut | None = Field(description="The bot, working again; null when it no longer exists.")
    link: str | None = Field(description="When the bot was deleted: a deep link to create a new one.")


@router.post(
    "/api/v1/agents/{agent_id}/channels/telegram/managed",
    status_code=status.HTTP_201_CREATED,
    response_model=ManagedBotLink,
    responses=error_responses(
        Unauthorized, Forbidden, NotFound, Conflict, PaymentRequired, ServiceUnavailable
    ),
)
async def create_managed_bot(agent_id: str, principal: Writer, managed: ManagedBotsDep) -> ManagedBotLink:
    """A one-time link (30 minutes) to the platform bot, which shows a button that creates a Telegram bot
    of your own in two taps; the new bot is connected to the agent and you are its owner. 503 without a
    platform bot (HUTCH_TELEGRAM_BOT_TOKEN) or while it cannot manage bots; 402 past the plan's
    `telegram_bots`."""
    request, link = await managed.start(principal, agent_id)
    return ManagedBotLink(link=link, expires_at=request.expires_at)


@router.post(
    "/api/v1/agents/{agent_id}/channels/{channel_id}/reconnect",
    response_model=Reconnected,
    responses=error_responses(
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PaymentRequired, ServiceUnavailable
    ),
)
async def reconnect_managed_bot(
    agent_id: str, channel_id: str, principal: Writer, managed: ManagedBotsDep, resources: ResourcesDep
) -> Reconnected:
    """Put a broken managed bot back to work with the token Telegram has for it now; when its owner deleted
    it, the channel goes and a new link to create another bot comes back."""
    channel, link = await managed.reconnect(principal, agent_id, channel_id)
    out = channel_out(channel, resources.settings.base_url) if channel is not None else None
    return Reconnected(channel=out, link=link)


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
