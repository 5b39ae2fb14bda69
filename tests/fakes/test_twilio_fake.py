"""The fake Twilio API speaks the real wire format well enough for the official SDK, rebased on it."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.twilio import (
    SIGNATURE_HEADER,
    FakeTwilioAccount,
    FakeTwilioServer,
    inbound_whatsapp_params,
    inbound_whatsapp_webhook,
    sign_webhook,
)

SANDBOX = "whatsapp:+14155238886"
ADA = "whatsapp:+15551234567"


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[FakeTwilioServer]:
    server = FakeTwilioServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio(twilio_server: FakeTwilioServer) -> FakeTwilioServer:
    twilio_server.reset()
    return twilio_server


@pytest.fixture
def account(fake_twilio: FakeTwilioServer) -> FakeTwilioAccount:
    return fake_twilio.add_account()


def rebased_client(server: FakeTwilioServer, username: str, password: str, account_sid: str) -> Client:
    """The technique Hutch's gateway uses: the official client with its ``api`` domain rebased."""
    client = Client(username, password, account_sid=account_sid)
    client.region = client.edge = None
    client.api.base_url = server.api_base
    return client


@pytest.fixture
def client(fake_twilio: FakeTwilioServer, account: FakeTwilioAccount) -> Client:
    return rebased_client(fake_twilio, account.sid, account.auth_token, account.sid)


def test_create_and_fetch_a_whatsapp_message(
    client: Client, fake_twilio: FakeTwilioServer, account: FakeTwilioAccount
) -> None:
    message = client.messages.create(
        from_=SANDBOX,
        to=ADA,
        body="Hello from Hutch",
        status_callback="https://hutch.example.com/whatsapp/status",
    )
    assert message.sid is not None and message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.from_, message.to, message.body) == (
        "queued",
        SANDBOX,
        ADA,
        "Hello from Hutch",
    )
    assert (message.num_segments, message.num_media, message.price, message.direction) == (
        "1",
        "0",
        None,
        "outbound-api",
    )
    assert message.account_sid == account.sid
    assert message.date_created is not None and message.date_sent is None

    fetched = client.messages(message.sid).fetch()
    assert (fetched.sid, fetched.body) == (message.sid, "Hello from Hutch")
    assert fake_twilio.sent_bodies(ADA) == ["Hello from Hutch"]

    recorded = fake_twilio.requests[0]
    assert (recorded.method, recorded.path, recorded.status) == (
        "POST",
        f"/2010-04-01/Accounts/{account.sid}/Messages.json",
        201,
    )
    assert recorded.username == account.sid
    assert recorded.params == {
        "From": SANDBOX,
        "To": ADA,
        "Body": "Hello from Hutch",
        "StatusCallback": "https://hutch.example.com/whatsapp/status",
    }


def test_the_resource_is_twilio_json(fake_twilio: FakeTwilioServer, account: FakeTwilioAccount) -> None:
    response = httpx.post(
        f"{fake_twilio.api_base}/2010-04-01/Accounts/{account.sid}/Messages.json",
        data={"From": SANDBOX, "To": ADA, "Body": "raw", "MediaUrl": ["https://example.com/cat.jpg"]},
        auth=(account.sid, account.auth_token),
    )
    assert response.status_code == 201
    resource = response.json()
    assert resource["sid"].startswith("MM") and resource["num_media"] == "1"
    assert resource["uri"] == f"/2010-04-01/Accounts/{account.sid}/Messages/{resource['sid']}.json"
    assert resource["api_version"] == "2010-04-01" and resource["error_code"] is None
    assert email.utils.parsedate_to_datetime(resource["date_created"]).utcoffset() is not None
    assert resource["date_created"].endswith(" +0000")
    assert fake_twilio.sent_messages(ADA)[0].media_urls == ["https://example.com/cat.jpg"]


def test_wrong_credentials_answer_401_with_twilio_error_20003(
    fake_twilio: FakeTwilioServer, account: FakeTwilioAccount
) -> None:
    client = rebased_client(fake_twilio, account.sid, "not-the-token", account.sid)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(from_=SANDBOX, to=ADA, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert "Authenticate" in caught.value.msg
    assert fake_twilio.sent_messages() == []

    raw = httpx.get(f"{fake_twilio.api_base}/2010-04-01/Accounts/{account.sid}/Messages/SM0.json")
    assert raw.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_api_keys_authenticate_for_their_account(
    fake_twilio: FakeTwilioServer, account: FakeTwilioAccount
) -> None:
    key_sid, secret = fake_twilio.add_api_key(account.sid)
    client = rebased_client(fake_twilio, key_sid, secret, account.sid)
    assert client.messages.create(from_=SANDBOX, to=ADA, body="via key").status == "queued"
    assert fake_twilio.requests[-1].username == key_sid


def test_validation_errors_carry_twilio_codes(client: Client) -> None:
    cases = [
        ({"from_": SANDBOX, "to": ADA, "body": "x" * 1601}, 21617),
        ({"from_": SANDBOX, "to": "whatsapp:+12", "body": "hi"}, 21211),
        ({"from_": "+14155238886", "to": ADA, "body": "hi"}, 21910),
        ({"from_": SANDBOX, "to": ADA}, 21602),
    ]
    for kwargs, code in cases:
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(**kwargs)
        assert (caught.value.status, caught.value.code) == (400, code)
    assert client.messages.create(from_=SANDBOX, to=ADA, body="x" * 1600).status == "queued"
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_unknown_whatsapp_sender_is_refused(fake_twilio: FakeTwilioServer) -> None:
    account = fake_twilio.add_account(whatsapp_senders={SANDBOX})
    client = rebased_client(fake_twilio, account.sid, account.auth_token, account.sid)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(from_="whatsapp:+14155550000", to=ADA, body="hi")
    assert caught.value.code == 63007
    assert client.messages.create(from_=SANDBOX, to=ADA, body="hi").status == "queued"


def test_scripted_rate_limit_and_server_error_then_recovery(
    client: Client, fake_twilio: FakeTwilioServer
) -> None:
    fake_twilio.rate_limit()
    fake_twilio.server_error()
    with pytest.raises(TwilioRestException) as limited:
        client.messages.create(from_=SANDBOX, to=ADA, body="one")
    assert (limited.value.status, limited.value.code) == (429, 20429)
    with pytest.raises(TwilioRestException) as broken:
        client.messages.create(from_=SANDBOX, to=ADA, body="one")
    assert (broken.value.status, broken.value.code) == (500, 20500)
    client.messages.create(from_=SANDBOX, to=ADA, body="one")
    assert fake_twilio.sent_bodies(ADA) == ["one"]
    assert [r.status for r in fake_twilio.requests] == [429, 500, 201]


# The SDK's async client still passes aiohttp's deprecated BasicAuth; nothing to fix on this side.
@pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")
async def test_the_async_client_uses_the_same_rebasing(
    fake_twilio: FakeTwilioServer, account: FakeTwilioAccount
) -> None:
    http_client = AsyncTwilioHttpClient()
    try:
        client = Client(account.sid, account.auth_token, http_client=http_client)
        client.region = client.edge = None
        client.api.base_url = fake_twilio.api_base
        message = await client.messages.create_async(from_=SANDBOX, to=ADA, body="async hello")
        assert message.status == "queued"
        assert message.sid is not None
        assert (await client.messages(message.sid).fetch_async()).body == "async hello"
    finally:
        await http_client.close()
    assert fake_twilio.sent_bodies(ADA) == ["async hello"]


def test_status_callbacks_are_signed_and_move_the_message(
    client: Client, fake_twilio: FakeTwilioServer, account: FakeTwilioAccount
) -> None:
    url = "https://hutch.example.com/whatsapp/status"
    sid = client.messages.create(from_=SANDBOX, to=ADA, body="hi", status_callback=url).sid
    assert sid is not None
    callback = fake_twilio.status_callback(sid, "failed", error_code=63016)
    assert callback is not None and callback.url == url
    assert callback.params["MessageStatus"] == "failed" and callback.params["ErrorCode"] == "63016"
    assert RequestValidator(account.auth_token).validate(
        url, callback.params, callback.headers[SIGNATURE_HEADER]
    )
    fetched = client.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 63016)


def test_inbound_webhooks_are_signed_as_twilio_signs_them(account: FakeTwilioAccount) -> None:
    url = "https://hutch.example.com/channels/whatsapp/webhook?channel=7"
    webhook = inbound_whatsapp_webhook(
        url,
        account.auth_token,
        "Hi there",
        from_number="+15551234567",
        to_number="+14155238886",
        account_sid=account.sid,
        profile_name="Ada",
    )
    params = webhook.params
    assert (params["From"], params["To"], params["WaId"]) == (ADA, SANDBOX, "15551234567")
    assert (params["Body"], params["NumMedia"], params["ProfileName"], params["MessageType"]) == (
        "Hi there",
        "0",
        "Ada",
        "text",
    )
    assert params["MessageSid"].startswith("SM") and params["AccountSid"] == account.sid

    validator = RequestValidator(account.auth_token)
    signature = webhook.headers[SIGNATURE_HEADER]
    assert validator.validate(url, params, signature)
    assert not validator.validate(url, params | {"Body": "tampered"}, signature)
    assert not RequestValidator("another-token").validate(url, params, signature)
    assert sign_webhook(url, params, account.auth_token) == signature

    voice = inbound_whatsapp_params(
        "",
        from_number=ADA,
        to_number=SANDBOX,
        account_sid=account.sid,
        media=[("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "audio/ogg")],
    )
    assert (voice["NumMedia"], voice["MessageType"], voice["MediaContentType0"]) == (
        "1",
        "audio",
        "audio/ogg",
    )
    assert voice["MessageSid"].startswith("MM") and voice["From"] == ADA
