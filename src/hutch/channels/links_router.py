"""Personal links: reach one's personal agent from one's own WhatsApp number or Telegram account."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, model_validator

from hutch.channels.links import links_of, unlink
from hutch.channels.models import ChannelLink
from hutch.channels.telegram.platform import LINK_CODE_MINUTES as TELEGRAM_CODE_MINUTES
from hutch.channels.telegram.platform import platform_username, start_telegram_link
from hutch.channels.whatsapp.gateway import WhatsAppNotConfigured, whatsapp_configured
from hutch.channels.whatsapp.service import LINK_CODE_MINUTES as WHATSAPP_CODE_MINUTES
from hutch.channels.whatsapp.service import link_instructions, start_link
from hutch.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.http.authz import CurrentUser
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1/users/me", tags=["channels"])
E164 = r"^\+[1-9]\d{6,14}$"


class ChannelLinkRequest(BaseModel):
    channel: Literal["whatsapp", "telegram"]
    phone_e164: str | None = Field(default=None, pattern=E164)
    # Telegram: when given, only this Telegram account can use the link.
    telegram_username: str | None = Field(default=None, pattern=r"^@?[A-Za-z0-9_]{5,32}$")
    agent_id: str | None = Field(default=None, max_length=32)  # default: the org's first personal agent

    @model_validator(mode="after")
    def _address(self) -> ChannelLinkRequest:
        if self.channel == "whatsapp" and self.phone_e164 is None:
            raise ValueError("phone_e164 is needed to link WhatsApp, in E.164 form like +15551234567")
        return self


class ChannelLinkOut(BaseModel):
    id: str
    channel: str
    status: str
    address: str  # the WhatsApp number, or the Telegram chat id once linked
    agent_id: str
    created_at: datetime


class ChannelLinkStarted(ChannelLinkOut):
    code: str
    link_url: str | None  # Telegram: the deep link to open
    expires_in_minutes: int
    instructions: str


class ChannelLinkList(BaseModel):
    items: list[ChannelLinkOut]


def _out(link: ChannelLink) -> dict[str, object]:
    return {
        "id": link.id,
        "channel": link.channel,
        "status": link.status.value,
        "address": link.address,
        "agent_id": link.agent_id,
        "created_at": link.created_at,
    }


@router.post(
    "/channel",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelLinkStarted,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, ServiceUnavailable),
)
async def link_channel(
    body: ChannelLinkRequest, principal: CurrentUser, uow: UoWDep, resources: ResourcesDep
) -> ChannelLinkStarted:
    """Reach your personal agent from your own WhatsApp number or Telegram account.

    WhatsApp: send the returned code from that number to the operator's WhatsApp number. Telegram: open
    `link_url` (the operator's bot, with a one-time code) and press Start. Codes expire after 30 minutes."""
    settings = resources.settings
    if body.channel == "telegram":
        username = await platform_username(settings, resources.telegram)
        link, code = await start_telegram_link(uow, principal, body.agent_id, body.telegram_username)
        url = f"https://t.me/{username}?start={code}"
        return ChannelLinkStarted(
            **_out(link),
            code=code,
            link_url=url,
            expires_in_minutes=TELEGRAM_CODE_MINUTES,
            instructions=f"Open {url} on a device with Telegram and press Start within "
            f"{TELEGRAM_CODE_MINUTES} minutes.",
        )
    if not whatsapp_configured(settings):
        raise WhatsAppNotConfigured()
    assert body.phone_e164 is not None and settings.twilio_whatsapp_from is not None
    link, code = await start_link(uow, settings, principal, body.phone_e164, body.agent_id)
    return ChannelLinkStarted(
        **_out(link),
        code=code,
        link_url=None,
        expires_in_minutes=WHATSAPP_CODE_MINUTES,
        instructions=link_instructions(settings, link, code),
    )


@router.get("/channels", response_model=ChannelLinkList, responses=error_responses(Unauthorized, Forbidden))
async def list_links(principal: CurrentUser, uow: UoWDep) -> ChannelLinkList:
    """Your linked WhatsApp numbers and Telegram chats, and links still waiting for their code."""
    return ChannelLinkList(
        items=[ChannelLinkOut.model_validate(_out(link)) for link in await links_of(uow, principal)]
    )


@router.delete(
    "/channels/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def remove_link(link_id: str, principal: CurrentUser, uow: UoWDep) -> Response:
    """Unlink: messages from that number or chat no longer reach your agent."""
    await unlink(uow, principal, link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
