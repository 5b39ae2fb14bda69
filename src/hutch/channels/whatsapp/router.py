"""WhatsApp: link a number to one's personal agent, and Twilio's signed inbound webhook."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator

from hutch.channels.whatsapp.gateway import WhatsAppNotConfigured, valid_signature, whatsapp_configured
from hutch.channels.whatsapp.service import LINK_CODE_MINUTES, accept_inbound, start_link
from hutch.core.authz import CurrentUser
from hutch.core.dependencies import ResourcesDep, SettingsDep, UoWDep
from hutch.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)

router = APIRouter(tags=["channels"])
E164 = r"^\+[1-9]\d{6,14}$"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class ChannelLinkRequest(BaseModel):
    channel: Literal["whatsapp", "telegram"]
    phone_e164: str | None = Field(default=None, pattern=E164)
    telegram_username: str | None = Field(default=None, max_length=64)
    agent_id: str | None = None  # default: the org's first personal agent

    @model_validator(mode="after")
    def _address(self) -> ChannelLinkRequest:
        if self.channel == "whatsapp" and self.phone_e164 is None:
            raise ValueError("phone_e164 is needed to link WhatsApp, in E.164 form like +15551234567")
        return self


class ChannelLinkOut(BaseModel):
    id: str
    channel: str
    status: str
    address: str
    agent_id: str
    code: str
    expires_in_minutes: int
    instructions: str


@router.post(
    "/api/v1/users/me/channel",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelLinkOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, ServiceUnavailable),
)
async def link_channel(
    body: ChannelLinkRequest, principal: CurrentUser, uow: UoWDep, settings: SettingsDep
) -> ChannelLinkOut:
    """Reach your personal agent from your own WhatsApp number: send the returned code from that number
    to the operator's WhatsApp number to confirm it is yours."""
    if body.channel == "telegram":
        raise ServiceUnavailable(
            "Linking Telegram to a personal agent needs the platform bot, which this Hutch does not offer "
            "yet; connect your own bot to the agent instead (POST /api/v1/agents/{id}/channels/telegram)."
        )
    if not whatsapp_configured(settings):
        raise WhatsAppNotConfigured()
    assert body.phone_e164 is not None and settings.twilio_whatsapp_from is not None
    link, code = await start_link(uow, settings, principal, body.phone_e164, body.agent_id)
    number = settings.twilio_whatsapp_from.removeprefix("whatsapp:")
    return ChannelLinkOut(
        id=link.id,
        channel=link.channel,
        status=link.status.value,
        address=link.address,
        agent_id=link.agent_id,
        code=code,
        expires_in_minutes=LINK_CODE_MINUTES,
        instructions=f'From {link.address}, send "LINK {code}" on WhatsApp to {number} within '
        f"{LINK_CODE_MINUTES} minutes.",
    )


@router.post("/webhooks/twilio/whatsapp", responses=error_responses(Forbidden))
async def whatsapp_webhook(request: Request, uow: UoWDep, resources: ResourcesDep) -> Response:
    """Twilio's inbound WhatsApp messages, checked against `X-Twilio-Signature`; answered by a job."""
    settings = resources.settings
    form = await request.form()
    params = {key: str(value) for key, value in form.multi_items()}
    url = settings.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not valid_signature(settings, url, params, request.headers.get("x-twilio-signature")):
        raise Forbidden("Invalid Twilio signature.")
    await accept_inbound(uow, params)
    return Response(EMPTY_TWIML, media_type="application/xml")  # replies go out through the REST API
