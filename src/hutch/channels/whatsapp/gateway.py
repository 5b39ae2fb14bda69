"""WhatsApp through the Twilio SDK: the operator's number sends, Twilio signs what it posts to Hutch.

``HUTCH_TWILIO_API_BASE`` rebases the SDK's Messages domain (a local Twilio in tests). Long texts are
split at 1,600 characters (WhatsApp's limit through Twilio). Outside the 24-hour window after a user's
last message, WhatsApp only delivers approved templates, so proactive messages go as the configured
Content SID with the text as its first variable.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from hutch.channels.telegram.gateway import split_text
from hutch.core.egress import EgressPolicy, fetch
from hutch.core.errors import ServiceUnavailable
from hutch.settings import Settings

MAX_MESSAGE = 1600
MEDIA_SECONDS = 30.0  # to download one file a user sent
SESSION_WINDOW = timedelta(hours=24)


class MediaUnavailable(Exception):
    """Twilio did not hand over a file a user sent; the message says why."""


class WhatsAppNotConfigured(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "WhatsApp is not set up on this service (HUTCH_TWILIO_ACCOUNT_SID, HUTCH_TWILIO_AUTH_TOKEN and "
            "HUTCH_TWILIO_WHATSAPP_FROM); ask the operator."
        )


def whatsapp_configured(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_whatsapp_from)


def valid_signature(settings: Settings, url: str, params: dict[str, str], signature: str | None) -> bool:
    if not signature or settings.twilio_auth_token is None:
        return False
    return bool(
        RequestValidator(settings.twilio_auth_token.get_secret_value()).validate(url, params, signature)
    )


def in_session_window(last_inbound_at: datetime | None, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return last_inbound_at is not None and now - last_inbound_at < SESSION_WINDOW


class WhatsAppGateway:
    def __init__(self, settings: Settings) -> None:
        if not whatsapp_configured(settings):
            raise WhatsAppNotConfigured()
        assert settings.twilio_auth_token is not None and settings.twilio_whatsapp_from is not None
        self.settings = settings
        self.sender = "whatsapp:" + settings.twilio_whatsapp_from.removeprefix("whatsapp:")
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """Built on first use, in the event loop its HTTP session then belongs to; kept for the process."""
        if self._client is None:
            settings = self.settings
            assert settings.twilio_auth_token is not None
            self._http = AsyncTwilioHttpClient()
            self._client = Client(
                settings.twilio_account_sid,
                settings.twilio_auth_token.get_secret_value(),
                http_client=self._http,
            )
            self._client.region = self._client.edge = None  # a custom API base must not be rebuilt from these
            if settings.twilio_api_base:
                self._client.api.base_url = settings.twilio_api_base.rstrip("/")
        return self._client

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None

    async def media(self, url: str, max_bytes: int) -> bytes:
        """A file a user sent (a ``MediaUrl`` of the webhook), read with the account's credentials through
        the egress guard: the URL came in a request, so it is checked like any URL someone else chose.
        Raises :class:`EgressError` (too large, unreachable, refused) and :class:`MediaUnavailable`."""
        settings = self.settings
        assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
        credentials = f"{settings.twilio_account_sid}:{settings.twilio_auth_token.get_secret_value()}"
        answer = await fetch(
            url,
            EgressPolicy.of(settings.egress_allow),
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
            max_bytes=max_bytes,
            time_limit=MEDIA_SECONDS,
        )
        if answer.status_code != 200:
            raise MediaUnavailable(f"Twilio answered {answer.status_code} for the media")
        return answer.content

    async def send(self, to_e164: str, text: str) -> list[str]:
        """Send a free-form reply (inside the 24 h window); the message sids."""
        sids = []
        for piece in split_text(text, MAX_MESSAGE):
            message = await self.client.messages.create_async(
                to=f"whatsapp:{to_e164}", from_=self.sender, body=piece
            )
            sids.append(str(message.sid))
        return sids

    async def send_template(self, to_e164: str, text: str) -> str:
        """A proactive message outside the window, as the configured template."""
        if not self.settings.twilio_whatsapp_template_sid:
            raise ServiceUnavailable(
                "Outside WhatsApp's 24-hour window only templates are delivered; "
                "set HUTCH_TWILIO_WHATSAPP_TEMPLATE_SID to an approved template."
            )
        message = await self.client.messages.create_async(
            to=f"whatsapp:{to_e164}",
            from_=self.sender,
            content_sid=self.settings.twilio_whatsapp_template_sid,
            content_variables=json.dumps({"1": text[:1000]}),
        )
        return str(message.sid)

    async def notify(self, to_e164: str, text: str, last_inbound_at: datetime | None) -> list[str]:
        """A message Hutch starts (not a reply): free-form inside the window, a template outside it."""
        if in_session_window(last_inbound_at):
            return await self.send(to_e164, text)
        return [await self.send_template(to_e164, text)]
