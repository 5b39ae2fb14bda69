"""A local Twilio REST API for WhatsApp messaging, speaking the real wire format, for the official SDK.

It serves ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded ``From``, ``To``,
``Body``, ``MediaUrl``, ``StatusCallback``...) and ``GET .../Messages/{Sid}.json`` behind HTTP basic auth,
answers Message resources as Twilio does (``SM...`` sids, status ``queued``, RFC 2822 dates, string
``num_segments``, ``price`` null) and errors in Twilio's JSON shape (``{"code", "message", "more_info",
"status"}``). Every request is recorded and every accepted message kept, so tests assert what a user would
have received (``fake.sent_bodies("whatsapp:+15551234567")``); failures can be scripted (``rate_limit``
answers 429 with code 20429, ``server_error`` 500, ``fail`` anything).

Pointing the official SDK here (Hutch's Twilio gateway does the same with ``HUTCH_TWILIO_API_BASE``):
each Twilio domain keeps its root URL in the public ``base_url`` attribute (``client.api`` is
``https://api.twilio.com``, which serves Messages), and ``Domain.absolute_url`` joins every request path
onto it, so rebasing that one attribute sends the real requests, with the real auth and form encoding, here::

    client = Client(account_sid, auth_token)  # http_client=AsyncTwilioHttpClient() for the *_async calls
    client.api.base_url = "http://127.0.0.1:PORT"
    client.messages.create(from_="whatsapp:+14155238886", to="whatsapp:+15551234567", body="Hi")

Keep ``region`` and ``edge`` unset (the SDK also reads ``TWILIO_REGION`` / ``TWILIO_EDGE`` from the
environment, so set ``client.region = client.edge = None`` to be sure): ``ClientBase.get_hostname`` rebuilds
the host from them, which would mangle a custom host. Other domains (``client.messaging``,
``client.content``...) have their own ``base_url`` if the gateway ever needs them. The other way, an
``HttpClient`` subclass rewriting ``https://api.twilio.com`` in each URL, also works but wraps SDK
internals for no gain.

``inbound_whatsapp_params`` builds the form Twilio POSTs to a webhook for an incoming WhatsApp message and
``signed_webhook`` signs it as Twilio does (``X-Twilio-Signature``, HMAC-SHA1 of the URL and sorted
parameters with the auth token), for tests to POST to Hutch.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.server import BackgroundServer

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY_LENGTH = 1600
_E164 = re.compile(r"\+[1-9]\d{6,14}")
# The GSM-7 basic alphabet: text made only of these fits 160 characters per SMS segment, else 70 (UCS-2).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def new_sid(prefix: str) -> str:
    """A Twilio sid: two letters and 32 hex digits (``AC`` account, ``SM`` message, ``MM`` media message)."""
    return prefix + secrets.token_hex(16)


def twilio_date(epoch: float | None = None) -> str:
    """Twilio's resource date format, RFC 2822 in UTC: ``Thu, 30 Jul 2015 20:12:31 +0000``."""
    return formatdate(epoch if epoch is not None else time.time(), usegmt=False).replace("-0000", "+0000")


@dataclass
class FakeTwilioAccount:
    sid: str
    auth_token: str
    # WhatsApp senders this account may send from; None accepts any sender.
    whatsapp_senders: set[str] | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    account_sid: str
    username: str | None  # who authenticated (account sid or API key sid)
    params: dict[str, str | list[str]]
    at: float  # time.time() when the request arrived
    status: int = 200


@dataclass
class FakeMessage:
    sid: str
    account_sid: str
    from_: str | None
    to: str
    body: str
    media_urls: list[str]
    status_callback: str | None
    messaging_service_sid: str | None
    status: str
    created: float
    updated: float
    sent: float | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def num_segments(self) -> int:
        if self.to.startswith("whatsapp:"):
            return 1  # WhatsApp has no segments; Twilio reports one
        if not self.body:
            return 1
        single, multi = (160, 153) if set(self.body) <= _GSM7 else (70, 67)
        return 1 if len(self.body) <= single else math.ceil(len(self.body) / multi)

    def resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": twilio_date(self.created),
            "date_sent": twilio_date(self.sent) if self.sent is not None else None,
            "date_updated": twilio_date(self.updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


@dataclass
class ScriptedFailure:
    status: int
    code: int
    message: str
    times: int
    method: str | None = None  # "POST" or "GET"; None matches both


@dataclass
class SignedWebhook:
    """What Twilio sends to a webhook: POST ``url`` with form ``params`` and these ``headers``."""

    url: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class TwilioApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status, headers=headers)


class FakeTwilioServer(BackgroundServer):
    def __init__(self) -> None:
        self.accounts: dict[str, FakeTwilioAccount] = {}
        self.api_keys: dict[str, tuple[str, str]] = {}  # key sid -> (secret, account sid)
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, FakeMessage] = {}
        self.failures: list[ScriptedFailure] = []
        self.media: dict[str, tuple[str, bytes, str]] = {}  # media sid -> (account sid, bytes, content type)
        self.media_fetches: list[str] = []  # media sids served, in order
        prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
        app = Starlette(
            routes=[
                Route(f"{prefix}/Messages.json", self._create_message, methods=["POST"]),
                Route(f"{prefix}/Messages/{{sid}}.json", self._fetch_message, methods=["GET"]),
                Route(f"{prefix}/Messages/{{sid}}/Media/{{media_sid}}", self._media, methods=["GET"]),
            ]
        )
        super().__init__(app)

    # --- test API ---------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What replaces ``https://api.twilio.com`` (``client.api.base_url``)."""
        return self.base_url

    def reset(self) -> None:
        self.accounts.clear()
        self.api_keys.clear()
        self.requests.clear()
        self.messages.clear()
        self.failures.clear()
        self.media.clear()
        self.media_fetches.clear()

    def add_media(self, account_sid: str, data: bytes, content_type: str) -> str:
        """A file a WhatsApp user sent: its media URL, as Twilio puts it in ``MediaUrl0`` (served behind HTTP
        basic auth with the account's credentials)."""
        message_sid, media_sid = new_sid("MM"), new_sid("ME")
        self.media[media_sid] = (account_sid, data, content_type)
        return (
            f"{self.base_url}/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}"
        )

    def add_account(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        whatsapp_senders: set[str] | None = None,
    ) -> FakeTwilioAccount:
        account = FakeTwilioAccount(
            account_sid or new_sid("AC"), auth_token or secrets.token_hex(16), whatsapp_senders
        )
        self.accounts[account.sid] = account
        return account

    def add_api_key(self, account_sid: str) -> tuple[str, str]:
        """An API key (sid, secret) that authenticates as ``account_sid``, as Twilio's Standard keys do."""
        key_sid, secret = new_sid("SK"), secrets.token_urlsafe(24)
        self.api_keys[key_sid] = (secret, account_sid)
        return key_sid, secret

    def fail(
        self, status: int, code: int, message: str, *, times: int = 1, method: str | None = None
    ) -> None:
        """Answer the next ``times`` authenticated requests with this Twilio error."""
        self.failures.append(ScriptedFailure(status, code, message, times, method))

    def rate_limit(self, *, times: int = 1) -> None:
        self.fail(429, 20429, "Too Many Requests", times=times)

    def server_error(self, *, times: int = 1) -> None:
        self.fail(500, 20500, "An internal server error has occurred", times=times)

    def sent_messages(self, to: str | None = None, account_sid: str | None = None) -> list[FakeMessage]:
        return [
            message
            for message in self.messages.values()
            if (to is None or message.to == to)
            and (account_sid is None or message.account_sid == account_sid)
        ]

    def sent_bodies(self, to: str | None = None) -> list[str]:
        return [message.body for message in self.sent_messages(to)]

    def status_callback(
        self, sid: str, status: str, *, error_code: int | None = None, error_message: str | None = None
    ) -> SignedWebhook | None:
        """Move a message to ``status`` (sent, delivered, read, failed, undelivered) and build the signed
        status callback Twilio would POST to its ``StatusCallback`` URL (None if it has none)."""
        message = self.messages[sid]
        now = time.time()
        message.status, message.updated = status, now
        if status in {"sent", "delivered", "read"} and message.sent is None:
            message.sent = now
        message.error_code, message.error_message = error_code, error_message
        if message.status_callback is None:
            return None
        params = status_callback_params(message)
        return signed_webhook(message.status_callback, params, self.accounts[message.account_sid].auth_token)

    # --- endpoints --------------------------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest:
        params: dict[str, str | list[str]] = {}
        if request.method == "POST":
            form = await request.form()
            for key in form:
                values = [v for v in form.getlist(key) if isinstance(v, str)]
                params[key] = values if len(values) > 1 or key == "MediaUrl" else values[0]
        record = RecordedRequest(
            request.method,
            request.url.path,
            request.path_params["account_sid"],
            _basic_username(request),
            params,
            time.time(),
        )
        self.requests.append(record)
        return record

    def _check(self, request: Request, record: RecordedRequest) -> FakeTwilioAccount:
        account = self.accounts.get(record.account_sid)
        credentials = _basic_credentials(request)
        if account is None or credentials is None:
            raise TwilioApiError(401, 20003, "Authenticate")
        username, password = credentials
        key = self.api_keys.get(username)
        authenticated = (
            username == account.sid and secrets.compare_digest(password, account.auth_token)
        ) or (key is not None and key[1] == account.sid and secrets.compare_digest(password, key[0]))
        if not authenticated:
            raise TwilioApiError(401, 20003, "Authenticate")
        for failure in self.failures:
            if failure.times > 0 and failure.method in (None, request.method):
                failure.times -= 1
                raise TwilioApiError(failure.status, failure.code, failure.message)
        return account

    async def _create_message(self, request: Request) -> Response:
        record = await self._record(request)
        try:
            account = self._check(request, record)
            message = _new_message(account, record.params)
        except TwilioApiError as exc:
            record.status = exc.status
            return _error(exc.status, exc.code, exc.message)
        self.messages[message.sid] = message
        record.status = 201
        return JSONResponse(message.resource(), 201)

    async def _media(self, request: Request) -> Response:
        account = self.accounts.get(request.path_params["account_sid"])
        credentials = _basic_credentials(request)
        if (
            account is None
            or credentials is None
            or credentials[0] != account.sid
            or not secrets.compare_digest(credentials[1], account.auth_token)
        ):
            return _error(401, 20003, "Authenticate")
        stored = self.media.get(request.path_params["media_sid"])
        if stored is None or stored[0] != account.sid:
            return _error(404, 20404, "The requested resource was not found")
        self.media_fetches.append(request.path_params["media_sid"])
        return Response(stored[1], media_type=stored[2])

    async def _fetch_message(self, request: Request) -> Response:
        record = await self._record(request)
        try:
            self._check(request, record)
            message = self.messages.get(request.path_params["sid"])
            if message is None or message.account_sid != record.account_sid:
                raise TwilioApiError(404, 20404, f"The requested resource {record.path} was not found")
        except TwilioApiError as exc:
            record.status = exc.status
            return _error(exc.status, exc.code, exc.message)
        return JSONResponse(message.resource())


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _basic_username(request: Request) -> str | None:
    credentials = _basic_credentials(request)
    return credentials[0] if credentials else None


def _single(params: dict[str, str | list[str]], key: str) -> str | None:
    value = params.get(key)
    return value[0] if isinstance(value, list) else value


def _new_message(account: FakeTwilioAccount, params: dict[str, str | list[str]]) -> FakeMessage:
    """Validate a create-message request with Twilio's error codes and build the queued message."""
    to, from_ = _single(params, "To"), _single(params, "From")
    service = _single(params, "MessagingServiceSid")
    body = _single(params, "Body") or ""
    media = params.get("MediaUrl") or []
    media_urls = media if isinstance(media, list) else [media]
    if not to:
        raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
    if not from_ and not service:
        raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
    if not body and not media_urls and not _single(params, "ContentSid"):
        raise TwilioApiError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_LENGTH:
        raise TwilioApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    if not _E164.fullmatch(to.removeprefix("whatsapp:")):
        raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {to.removeprefix('whatsapp:')}")
    if from_ is not None:
        if not _E164.fullmatch(from_.removeprefix("whatsapp:")):
            raise TwilioApiError(
                400, 21212, f"Invalid 'From' Phone Number: {from_.removeprefix('whatsapp:')}"
            )
        if to.startswith("whatsapp:") != from_.startswith("whatsapp:"):
            raise TwilioApiError(
                400, 21910, "Invalid From and To pair. From and To should be of the same channel"
            )
        senders = account.whatsapp_senders
        if from_.startswith("whatsapp:") and senders is not None and from_ not in senders:
            raise TwilioApiError(
                400, 63007, "Twilio could not find a Channel with the specified From address"
            )
    now = time.time()
    return FakeMessage(
        sid=new_sid("MM" if media_urls else "SM"),
        account_sid=account.sid,
        from_=from_,
        to=to,
        body=body,
        media_urls=media_urls,
        status_callback=_single(params, "StatusCallback"),
        messaging_service_sid=service,
        # Twilio answers "accepted" when a Messaging Service still has to pick the sender.
        status="queued" if from_ else "accepted",
        created=now,
        updated=now,
    )


# --- inbound webhooks -----------------------------------------------------------------------------


def sign_webhook(url: str, params: dict[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a POST of ``params`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def signed_webhook(url: str, params: dict[str, str], auth_token: str) -> SignedWebhook:
    headers = {
        SIGNATURE_HEADER: sign_webhook(url, params, auth_token),
        "Content-Type": "application/x-www-form-urlencoded",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        "User-Agent": "TwilioProxy/1.1",
    }
    return SignedWebhook(url, params, headers)


def inbound_whatsapp_params(
    body: str,
    *,
    from_number: str,
    to_number: str,
    account_sid: str,
    profile_name: str = "Ada Lovelace",
    media: list[tuple[str, str]] | None = None,
    message_sid: str | None = None,
) -> dict[str, str]:
    """The form Twilio POSTs for an incoming WhatsApp message; numbers are E.164 (``+15551234567``).

    ``media`` is a list of (url, content type); a voice note arrives as ``audio/ogg``.
    """
    media = media or []
    sid = message_sid or new_sid("MM" if media else "SM")
    kind = "text"
    if media:
        kind = {"image": "image", "audio": "audio", "video": "video"}.get(
            media[0][1].split("/")[0], "document"
        )
    params = {
        "SmsMessageSid": sid,
        "NumMedia": str(len(media)),
        "ProfileName": profile_name,
        "MessageType": kind,
        "SmsSid": sid,
        "WaId": from_number.removeprefix("whatsapp:").removeprefix("+"),
        "SmsStatus": "received",
        "Body": body,
        "To": _whatsapp(to_number),
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": _whatsapp(from_number),
        "ApiVersion": API_VERSION,
    }
    for index, (url, content_type) in enumerate(media):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = content_type
    return params


def inbound_whatsapp_webhook(
    url: str, auth_token: str, body: str, *, from_number: str, to_number: str, account_sid: str, **extra: Any
) -> SignedWebhook:
    """An incoming WhatsApp message, signed for ``url`` with the account's auth token."""
    params = inbound_whatsapp_params(
        body, from_number=from_number, to_number=to_number, account_sid=account_sid, **extra
    )
    return signed_webhook(url, params, auth_token)


def status_callback_params(message: FakeMessage) -> dict[str, str]:
    """The form Twilio POSTs to a message's ``StatusCallback`` when its status changes."""
    params = {
        "ApiVersion": API_VERSION,
        "MessageStatus": message.status,
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "To": message.to,
        "From": message.from_ or "",
        "MessageSid": message.sid,
        "AccountSid": message.account_sid,
    }
    if message.to.startswith("whatsapp:"):
        params["ChannelPrefix"] = "whatsapp"
        params["ChannelToAddress"] = message.to.removeprefix("whatsapp:")
    if message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
        if message.error_message:
            params["ErrorMessage"] = message.error_message
    return params


def _whatsapp(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"
