"""A personal agent on WhatsApp through Twilio: linking, signed webhooks, replies, the 24 h window."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.request_validator import RequestValidator

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.channels.models import ChannelLink, ExternalEvent
from hutch.channels.repository import LinkRepository
from hutch.channels.whatsapp.gateway import WhatsAppGateway
from hutch.conversations.models import MessageAttachment
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.turns.media import NO_VISION, NOT_DOWNLOADED, VOICE_NOT_SET_UP
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources, statements_on
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.twilio import FakeTwilioServer, inbound_whatsapp_webhook

OPERATOR = "+14155238886"
USER = "+15551234567"
WEBHOOK = "https://hutch.example/webhooks/twilio/whatsapp"
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(64)


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[FakeTwilioServer]:
    server = FakeTwilioServer()
    server.start()
    yield server
    server.stop()


@dataclass
class OnWhatsApp:
    client: AsyncClient
    twilio: FakeTwilioServer
    resources: Resources
    session: AsyncSession
    owner: Account
    agent_id: str
    account_sid: str
    auth_token: str

    async def inbound(self, body: str, sender: str = USER, token: str | None = None, **extra: Any) -> int:
        signed = inbound_whatsapp_webhook(
            WEBHOOK,
            token or self.auth_token,
            body,
            from_number=sender,
            to_number=OPERATOR,
            account_sid=self.account_sid,
            **extra,
        )
        response = await self.client.post(
            "/webhooks/twilio/whatsapp", data=signed.params, headers=signed.headers
        )
        return response.status_code

    async def say(self, body: str, sender: str = USER, **extra: Any) -> list[str]:
        before = len(self.twilio.sent_bodies(f"whatsapp:{sender}"))
        assert await self.inbound(body, sender, **extra) == 200
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        await self.resources.jobs.run_pending()
        return self.twilio.sent_bodies(f"whatsapp:{sender}")[before:]

    async def link(self, phone: str = USER) -> str:
        linked = await self.client.post(
            "/api/v1/users/me/channel",
            json={"channel": "whatsapp", "phone_e164": phone},
            headers=self.owner.headers,
        )
        assert linked.status_code == 201, linked.text
        return str(linked.json()["code"])


@pytest.fixture
async def on_whatsapp(
    twilio_server: FakeTwilioServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[OnWhatsApp]:
    twilio_server.reset()
    account = twilio_server.add_account()
    configured = settings.model_copy(
        update={
            "twilio_api_base": twilio_server.api_base,
            "twilio_account_sid": account.sid,
            "twilio_auth_token": SecretStr(account.auth_token),
            "twilio_whatsapp_from": OPERATOR,
            "twilio_whatsapp_template_sid": "HX0123456789abcdef0123456789abcdef",
            "egress_allow": ["127.0.0.1"],  # the fake Twilio serves media on loopback
        }
    )
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents",
            json={"name": "My assistant", "model": "demo/echo", "audience": "personal"},
            headers=owner.headers,
        )
        yield OnWhatsApp(
            client,
            twilio_server,
            resources,
            session,
            owner,
            agent.json()["id"],
            account.sid,
            account.auth_token,
        )


def test_twilios_documented_signature_example_validates() -> None:
    # The example of Twilio's security documentation: its URL, parameters, auth token and signature.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    validator = RequestValidator("12345")
    assert validator.validate(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not validator.validate(url, {**params, "Digits": "1235"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


async def test_a_number_is_linked_by_sending_the_code_from_it(on_whatsapp: OnWhatsApp) -> None:
    w = on_whatsapp
    assert await w.say("hello?") == [
        "This number is not linked to an assistant yet. Sign in to your dashboard, link this number "
        "(Settings, Channels, WhatsApp) and send the code shown there, like: LINK 123456"
    ]
    code = await w.link()
    # The code only works from the number it was made for.
    assert "not valid" in (await w.say(f"LINK {code}", sender="+15550000000"))[0]
    assert "Linked!" in (await w.say(f"link {code}"))[0]
    assert await w.say("What's up?") == ["[Demo — no AI] You said: What's up?"]
    assert "not valid" in (await w.say(f"LINK {code}"))[0]  # single use


async def test_a_turn_reads_the_number_its_agent_org_and_keys_in_one_statement(
    on_whatsapp: OnWhatsApp,
) -> None:
    """Each statement costs CPU in the worker and in PostgreSQL: the number's link comes with its agent, the
    org and its provider keys, and the answer's statement marks the message as being sent."""
    w = on_whatsapp
    assert "Linked!" in (await w.say(f"LINK {await w.link()}"))[0]
    assert await w.inbound("first question") == 200
    assert isinstance(w.resources.jobs, RecordingJobQueue)
    with statements_on(w.resources.database.engine) as statements:
        await w.resources.jobs.run_pending()
    assert w.twilio.sent_bodies(f"whatsapp:{USER}")[-1] == "[Demo — no AI] You said: first question"
    ran = [s for s in statements if "SAVEPOINT" not in s]  # (the test's transaction)
    # The message; the number's link, its 24-hour window opened, with its agent, org and keys; the message
    # stored; its reservation; the answer (marking the message as being sent); the handled mark.
    assert len(ran) == 6, ran

    # The message opened the window (at its time, or later); an older message (a retried job's) never moves
    # it back.
    newest = select(ExternalEvent.received_at).order_by(ExternalEvent.received_at.desc()).limit(1)
    received = await w.session.scalar(newest)
    opened = await w.session.scalar(select(ChannelLink.last_inbound_at).where(ChannelLink.address == USER))
    assert received is not None and opened is not None and opened >= received
    links = LinkRepository(w.session)
    linked = await links.inbound_to_active("whatsapp", USER, received - timedelta(hours=2))
    assert linked is not None and linked[1] is not None and linked[0].last_inbound_at == opened
    later = opened + timedelta(minutes=1)
    linked = await links.inbound_to_active("whatsapp", USER, later)
    assert linked is not None and linked[0].last_inbound_at == later
    assert await links.inbound_to_active("whatsapp", "+15550000000", received) is None  # no active link


async def test_bad_signatures_are_403_and_store_nothing(on_whatsapp: OnWhatsApp) -> None:
    w = on_whatsapp
    assert await w.inbound("hi", token="0" * 32) == 403
    unsigned = await w.client.post(
        "/webhooks/twilio/whatsapp", data={"Body": "hi", "From": f"whatsapp:{USER}"}
    )
    assert unsigned.status_code == 403
    assert await w.session.scalar(select(func.count()).select_from(ExternalEvent)) == 0


async def test_replays_media_and_long_replies(on_whatsapp: OnWhatsApp, fake_llm: FakeLLMServer) -> None:
    w = on_whatsapp
    await w.say(f"LINK {await w.link()}")
    photo = w.twilio.add_media(w.account_sid, PNG, "image/jpeg")
    # The demo model cannot see images: it says so, and the photo is kept (fetched with basic auth).
    assert await w.say("a photo", media=[(photo, "image/jpeg")]) == [NO_VISION]
    assert len(w.twilio.media_fetches) == 1
    [kept] = (await w.session.scalars(select(MessageAttachment))).all()
    assert kept.kind.value == "image" and kept.size_bytes == len(PNG)
    # A media URL pointing inside the network is refused by the egress guard, not fetched.
    inside = [("http://169.254.169.254/latest/meta-data/", "image/jpeg")]
    assert await w.say("look", media=inside) == [NOT_DOWNLOADED]
    voice = w.twilio.add_media(w.account_sid, b"OggS" + bytes(4000), "audio/ogg")
    assert await w.say("", media=[(voice, "audio/ogg")]) == [VOICE_NOT_SET_UP]
    exe = w.twilio.add_media(w.account_sid, b"MZ" + bytes(10), "application/x-msdownload")
    assert "cannot open that kind of file" in (await w.say("", media=[(exe, "application/x-msdownload")]))[0]
    await w.client.patch(
        f"/api/v1/agents/{w.agent_id}", json={"model": "openai/gpt-4o-mini"}, headers=w.owner.headers
    )
    photo = w.twilio.add_media(w.account_sid, PNG, "image/png")
    assert await w.say("what is it?", media=[(photo, "image/png")]) == ["Echo: what is it?"]
    [request] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    parts = request.body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert await w.inbound("once", message_sid="SM" + "1" * 32) == 200
    assert await w.inbound("once", message_sid="SM" + "1" * 32) == 200  # Twilio retried: one answer
    assert isinstance(w.resources.jobs, RecordingJobQueue)
    assert await w.resources.jobs.run_pending() == ["answered"]

    fake_llm.script(ScriptedReply(content=("A fairly long sentence about kettles. " * 120).strip()))
    sent = await w.say("Tell me a lot")
    assert len(sent) == 3 and all(len(piece) <= 1600 for piece in sent)


async def test_proactive_messages_use_the_template_outside_the_window(on_whatsapp: OnWhatsApp) -> None:
    w = on_whatsapp
    gateway = WhatsAppGateway(w.resources.settings)
    try:
        await gateway.notify(USER, "Your assistant is ready", datetime.now(UTC) - timedelta(hours=1))
        await gateway.notify(USER, "Your assistant is ready", datetime.now(UTC) - timedelta(hours=25))
    finally:
        await gateway.close()
    inside, outside = [r.params for r in w.twilio.requests if r.method == "POST"]
    assert inside["Body"] == "Your assistant is ready" and "ContentSid" not in inside
    assert outside["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert "Your assistant is ready" in str(outside["ContentVariables"]) and "Body" not in outside


async def test_linking_needs_whatsapp_configured_and_a_personal_agent(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    refused = await client.post(
        "/api/v1/users/me/channel", json={"channel": "whatsapp", "phone_e164": USER}, headers=owner.headers
    )
    assert refused.status_code == 503 and "HUTCH_TWILIO" in refused.json()["detail"]
    bad = await client.post(
        "/api/v1/users/me/channel",
        json={"channel": "whatsapp", "phone_e164": "555-1234"},
        headers=owner.headers,
    )
    assert bad.status_code == 422


async def test_per_person_limits_spare_the_owners_own_number_and_stop_a_stranger(
    on_whatsapp: OnWhatsApp,
) -> None:
    w = on_whatsapp
    await w.say(f"LINK {await w.link()}")
    await w.session.execute(update(Org).where(Org.id == w.owner.org.id).values(plan="fairuse"))  # 3 a minute
    await w.session.commit()
    for n in range(4):  # the member's own assistant: no per-person limit
        assert await w.say(f"note {n}") == [f"[Demo — no AI] You said: note {n}"]

    # The agent made public: whoever writes from the linked number is a stranger it answers within limits.
    public = await w.client.patch(
        f"/api/v1/agents/{w.agent_id}",
        json={"audience": "public", "end_user_messages_per_minute": 2},
        headers=w.owner.headers,
    )
    assert public.status_code == 200, public.text
    for n in range(2):
        assert await w.say(f"question {n}") == [f"[Demo — no AI] You said: question {n}"]
    assert await w.say("one more") == [
        "You are sending messages faster than I can answer. Please wait a minute and try again."
    ]
    [listed] = (await w.client.get("/api/v1/conversations", headers=w.owner.headers)).json()["items"]
    assert listed["end_user"]["limited_note"] == "went past 2 messages a minute per person (My assistant)"
