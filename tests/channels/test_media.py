"""Photos, voice notes and files sent on Telegram, through the real webhook, job and turn, against the fake
Bot API (getFile and file downloads), the fake model and the fake transcription endpoint."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.conversations.models import Message, MessageAttachment
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.turns.media import NO_VISION, VOICE_FAILED, VOICE_NOT_SET_UP, VOICE_OVER_LIMIT
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import DEFAULT_PASSWORD, Account, create_account
from tests.fakes.llm import FakeLLMServer
from tests.fakes.telegram import (
    FakeTelegramServer,
    Sender,
    document_update,
    photo_update,
    voice_update,
    webhook_headers,
)
from tests.fakes.transcription import FakeTranscriptionServer, TranscriptReply

TOKEN = "123456789:AAE_test_token_for_the_media_bot_xy"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
OGG = b"OggS" + bytes(8000)  # a voice note's bytes (the fake endpoint does not decode them)
PDF_TEXT = b"Order 5521 ships on Tuesday from the Leeds warehouse."


@dataclass
class OnTelegram:
    client: AsyncClient
    telegram: FakeTelegramServer
    resources: Resources
    session: AsyncSession
    owner: Account
    agent_id: str
    channel_id: str
    secret: str

    async def send(self, update: dict[str, Any]) -> list[str]:
        before = len(self.telegram.sent_texts(Sender().id))
        posted = await self.client.post(
            f"/webhooks/telegram/{self.channel_id}", json=update, headers=webhook_headers(self.secret)
        )
        assert posted.status_code == 200
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        await self.resources.jobs.run_pending()
        return self.telegram.sent_texts(Sender().id)[before:]

    async def on_plan(self, plan: str) -> None:
        await self.session.execute(update(Org).where(Org.id == self.owner.org.id).values(plan=plan))
        await self.session.commit()

    async def use_model(self, model: str) -> None:
        changed = await self.client.patch(
            f"/api/v1/agents/{self.agent_id}", json={"model": model}, headers=self.owner.headers
        )
        assert changed.status_code == 200, changed.text

    async def stored(self) -> list[Message]:
        rows = await self.session.scalars(
            select(Message)
            .where(Message.org_id == self.owner.org.id)
            .order_by(Message.created_at, Message.seq)
        )
        return list(rows)

    async def attachments(self) -> list[MessageAttachment]:
        rows = await self.session.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.org_id == self.owner.org.id)
            .order_by(MessageAttachment.created_at)
        )
        return list(rows)


Deploy = Callable[..., Awaitable[OnTelegram]]


@pytest.fixture
async def deploy(
    telegram_server: FakeTelegramServer,
    transcription_server: FakeTranscriptionServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Deploy]:
    """Hutch with a Telegram bot; ``transcription=False`` leaves voice transcription unconfigured."""
    telegram_server.reset()
    transcription_server.reset()
    telegram_server.add_bot(TOKEN, "media_bot")
    clients: list[AsyncClient] = []
    built_resources: list[Resources] = []

    async def make(*, transcription: bool = True, model: str = "openai/gpt-4o-mini") -> OnTelegram:
        update_settings: dict[str, Any] = {"telegram_api_base": telegram_server.base_url}
        if transcription:
            update_settings |= {
                "transcription_base_url": transcription_server.api_base,
                "transcription_api_key": SecretStr("sk-transcribe-test"),
            }
        resources = build_test_resources(settings.model_copy(update=update_settings), database, database_url)
        built_resources.append(resources)
        client = asgi_client(create_app(resources=resources))
        await client.__aenter__()
        clients.append(client)
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Shop", "model": model}, headers=owner.headers
        )
        connected = await client.post(
            f"/api/v1/agents/{agent.json()['id']}/channels/telegram",
            json={"bot_token": TOKEN},
            headers=owner.headers,
        )
        assert connected.status_code == 201, connected.text
        webhook = telegram_server.webhook(TOKEN)
        assert webhook is not None and webhook.secret_token
        return OnTelegram(
            client,
            telegram_server,
            resources,
            session,
            owner,
            agent.json()["id"],
            connected.json()["id"],
            webhook.secret_token,
        )

    yield make
    for client in clients:
        await client.__aexit__(None, None, None)
    for built in built_resources:
        await built.close()


def _user_parts(fake_llm: FakeLLMServer) -> list[Any]:
    [request] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    user = [m for m in request.body["messages"] if m["role"] == "user"][-1]
    return user["content"] if isinstance(user["content"], list) else [user["content"]]


async def test_a_photo_reaches_a_vision_model_as_an_image_and_is_kept(
    deploy: Deploy, fake_llm: FakeLLMServer
) -> None:
    t = await deploy()
    file_id = t.telegram.add_file(PNG, folder="photos")
    [answer] = await t.send(photo_update(file_id=file_id, file_size=len(PNG), caption="What is this?"))
    assert "What is this?" in answer  # the fake model echoes the text part
    parts = _user_parts(fake_llm)
    assert {"type": "text", "text": "What is this?"} in parts
    [image] = [p for p in parts if p.get("type") == "image_url"]
    assert image["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(PNG).decode()
    [kept] = await t.attachments()
    assert (kept.kind.value, kept.size_bytes, kept.content_type) == ("image", len(PNG), "image/jpeg")
    user, _ = await t.stored()
    assert user.content == "What is this?" and kept.message_id == user.id


async def test_a_model_that_cannot_see_images_says_so_without_being_asked(
    deploy: Deploy, fake_llm: FakeLLMServer
) -> None:
    t = await deploy(model="demo/echo")
    file_id = t.telegram.add_file(PNG, folder="photos")
    assert await t.send(photo_update(file_id=file_id, file_size=len(PNG))) == [NO_VISION]
    user, answer = await t.stored()
    assert user.content == "[image]" and answer.content == NO_VISION
    assert (answer.input_tokens, answer.output_tokens, answer.cost_micro_usd) == (0, 0, 0)
    assert len(await t.attachments()) == 1 and not fake_llm.requests


async def test_a_voice_note_is_transcribed_answered_as_text_and_metered(
    deploy: Deploy, fake_llm: FakeLLMServer, transcription_server: FakeTranscriptionServer
) -> None:
    t = await deploy()
    transcription_server.script(TranscriptReply(text="When does my order ship?", seconds=3.5))
    file_id = t.telegram.add_file(OGG, folder="voice")
    [answer] = await t.send(voice_update(file_id=file_id, file_size=len(OGG), duration=4))
    assert "When does my order ship?" in answer
    [call] = transcription_server.requests
    assert (call.model, call.data, call.content_type) == ("whisper-1", OGG, "audio/ogg")
    assert call.authorization == "Bearer sk-transcribe-test"
    user, _ = await t.stored()
    assert user.content == "When does my order ship?"
    [kept] = await t.attachments()
    assert kept.kind.value == "audio" and kept.transcribed and kept.text == "When does my order ship?"
    assert float(kept.duration_seconds or 0) == 3.5
    assert _user_parts(fake_llm) == ["When does my order ship?"]
    usage = (await t.client.get("/api/v1/billing/usage", headers=t.owner.headers)).json()["usage"]
    assert usage["transcription_minutes_this_month"] == 1  # 4 s, counted in whole minutes up
    assert usage["transcription_cost_micro_usd_this_month"] == 350  # 3.5 s at $0.006 a minute
    assert usage["cost_micro_usd_this_month"] >= 350


async def test_voice_notes_without_transcription_are_kept_and_answered_plainly(
    deploy: Deploy, fake_llm: FakeLLMServer
) -> None:
    t = await deploy(transcription=False)
    file_id = t.telegram.add_file(OGG, folder="voice")
    assert await t.send(voice_update(file_id=file_id, file_size=len(OGG))) == [VOICE_NOT_SET_UP]
    user, answer = await t.stored()
    assert user.content == "[voice note]" and answer.cost_micro_usd == 0 and not fake_llm.requests
    [kept] = await t.attachments()
    assert not kept.transcribed and kept.duration_seconds is None


async def test_a_failing_transcription_endpoint_gets_a_clear_reply_and_is_recorded(
    deploy: Deploy, fake_llm: FakeLLMServer, transcription_server: FakeTranscriptionServer
) -> None:
    t = await deploy()
    transcription_server.script(TranscriptReply(status=500, error="upstream exploded"))
    transcription_server.script(TranscriptReply(status=500, error="upstream exploded"))
    file_id = t.telegram.add_file(OGG, folder="voice")
    assert await t.send(voice_update(file_id=file_id, file_size=len(OGG))) == [VOICE_FAILED]
    _, answer = await t.stored()
    assert answer.error is not None and "transcription failed" in answer.error
    assert "sk-transcribe-test" not in answer.error and not fake_llm.requests


async def test_transcription_minutes_of_the_plan_are_enforced(
    deploy: Deploy, fake_llm: FakeLLMServer, transcription_server: FakeTranscriptionServer
) -> None:
    t = await deploy()
    await t.on_plan("listener")  # one minute a month
    transcription_server.script(TranscriptReply(text="first", seconds=61))
    for n in range(2):
        file_id = t.telegram.add_file(OGG, folder="voice")
        sent = await t.send(voice_update(file_id=file_id, file_size=len(OGG)))
        if n == 0:
            assert "first" in sent[0]
        else:
            assert sent == [VOICE_OVER_LIMIT]
    assert len(transcription_server.requests) == 1


async def test_a_pdf_is_read_into_the_prompt_for_that_turn(deploy: Deploy, fake_llm: FakeLLMServer) -> None:
    t = await deploy()
    pdf = _pdf(PDF_TEXT.decode())
    file_id = t.telegram.add_file(pdf)
    update_body = document_update(
        file_id=file_id, file_name="order.pdf", mime_type="application/pdf", file_size=len(pdf),
        caption="When does it ship?",
    )  # fmt: skip
    [answer] = await t.send(update_body)
    assert "Leeds warehouse" in answer  # the fake model echoes its prompt
    [kept] = await t.attachments()
    assert kept.kind.value == "document" and kept.filename == "order.pdf"
    assert kept.text is not None and "Order 5521" in kept.text
    user, _ = await t.stored()
    assert user.content == "When does it ship?"  # the file's text is the turn's, not the message's


async def test_refused_files_get_a_clear_reply_and_nothing_is_stored(
    deploy: Deploy, fake_llm: FakeLLMServer
) -> None:
    t = await deploy()
    exe = b"MZ" + bytes(100)
    exe_id = t.telegram.add_file(exe)
    executable = document_update(
        file_id=exe_id, file_name="setup.exe", mime_type="application/x-msdownload", file_size=len(exe)
    )
    [refused] = await t.send(executable)
    assert "cannot open that kind of file" in refused
    await t.on_plan("snapshots")  # images up to 1 MB, nothing else
    big = bytes(2 * 1024 * 1024)
    big_id = t.telegram.add_file(big, folder="photos")
    [too_big] = await t.send(photo_update(file_id=big_id, file_size=len(big)))
    assert "too large" in too_big and "1 MB" in too_big
    voice_id = t.telegram.add_file(OGG, folder="voice")
    [no_audio] = await t.send(voice_update(file_id=voice_id, file_size=len(OGG)))
    assert "does not accept voice notes" in no_audio
    assert await t.stored() == [] and await t.attachments() == []
    assert not fake_llm.requests and t.telegram.downloads == []


def _pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` on it."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


async def test_files_show_in_the_api_and_the_inbox_to_the_org_only(
    deploy: Deploy, fake_llm: FakeLLMServer, transcription_server: FakeTranscriptionServer
) -> None:
    t = await deploy()
    transcription_server.script(TranscriptReply(text="Call me back", seconds=2))
    photo_id = t.telegram.add_file(PNG, folder="photos")
    voice_id = t.telegram.add_file(OGG, folder="voice")
    await t.send(photo_update(file_id=photo_id, file_size=len(PNG), caption="Broken lid"))
    await t.send(voice_update(file_id=voice_id, file_size=len(OGG)))
    [listed] = (await t.client.get("/api/v1/conversations", headers=t.owner.headers)).json()["items"]
    shown = (await t.client.get(f"/api/v1/conversations/{listed['id']}", headers=t.owner.headers)).json()
    with_files = [m for m in shown["messages"] if m["attachments"]]
    assert [m["content"] for m in with_files] == ["Broken lid", "Call me back"]
    [image], [voice] = (m["attachments"] for m in with_files)
    assert (image["kind"], image["size_bytes"], image["transcript"]) == ("image", len(PNG), None)
    assert (voice["kind"], voice["transcript"], voice["duration_seconds"]) == ("audio", "Call me back", 2.0)
    fetched = await t.client.get(image["url"], headers=t.owner.headers)
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/jpeg" and fetched.headers["x-content-type-options"]
    agent_messages = await t.client.get(
        f"/api/v1/agents/{t.agent_id}/conversations/{listed['id']}/messages", headers=t.owner.headers
    )
    assert [a["id"] for m in agent_messages.json()["items"] for a in m["attachments"]] == [
        image["id"],
        voice["id"],
    ]

    stranger = await create_account(t.session, t.resources.settings, email="stranger@example.com")
    assert (await t.client.get(image["url"], headers=stranger.headers)).status_code == 404
    unknown = f"/api/v1/conversations/{listed['id']}/attachments/att_unknown"
    assert (await t.client.get(unknown, headers=t.owner.headers)).status_code == 404

    form = await t.client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    await t.client.post(
        "/login", data={"csrf": csrf[1], "email": t.owner.user.email, "password": DEFAULT_PASSWORD}
    )
    page = await t.client.get(f"/app/inbox/{listed['id']}")
    assert page.status_code == 200
    assert f"/app/inbox/{listed['id']}/attachments/{image['id']}" in page.text and "<img" in page.text
    assert "<audio" in page.text and "Transcript: Call me back" in page.text
    inline = await t.client.get(f"/app/inbox/{listed['id']}/attachments/{voice['id']}")
    assert inline.status_code == 200 and inline.content == OGG
