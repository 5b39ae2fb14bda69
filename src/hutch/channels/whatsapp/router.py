"""WhatsApp: Twilio's signed inbound webhook."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hutch.channels.whatsapp.gateway import valid_signature
from hutch.channels.whatsapp.service import accept_inbound
from hutch.core.errors import (
    Forbidden,
    error_responses,
)
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(tags=["channels"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


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
