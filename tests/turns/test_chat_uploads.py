"""A file sent with a message to ``POST /api/v1/agents/{id}/chat`` (multipart) and in the dashboard's chat:
read as Telegram's are, refused with 413 / 415 by the API, shown in the chat thread."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.app import create_app
from hutch.conversations.models import Message, MessageAttachment
from hutch.db.engine import Database
from hutch.settings import Settings
from hutch.turns.media import VOICE_NOT_SET_UP
from tests.channels.test_media import OGG, PDF_TEXT, PNG, _pdf
from tests.conftest import asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer
from tests.web.test_dashboard import csrf_of, log_in


@dataclass
class Chat:
    client: AsyncClient
    session: AsyncSession
    settings: Settings
    owner: Account
    agent_id: str

    @property
    def url(self) -> str:
        return f"/api/v1/agents/{self.agent_id}/chat"

    async def stored(self) -> tuple[list[Message], list[MessageAttachment]]:
        org = self.owner.org.id
        messages = await self.session.scalars(
            select(Message).where(Message.org_id == org).order_by(Message.seq)
        )
        files = await self.session.scalars(select(MessageAttachment).where(MessageAttachment.org_id == org))
        return list(messages), list(files)


@pytest.fixture
async def chat(
    settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> AsyncIterator[Chat]:
    configured = settings.model_copy(update={"attachment_max_mb": 1})
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Shop", "model": "openai/gpt-4o-mini"}, headers=owner.headers
        )
        assert agent.status_code == 201, agent.text
        yield Chat(client, session, configured, owner, agent.json()["id"])
    await resources.close()


async def test_the_api_takes_an_image_as_multipart_and_keeps_json_as_it_was(
    chat: Chat, fake_llm: FakeLLMServer
) -> None:
    c = chat
    sent = await c.client.post(
        c.url,
        data={"message": "What is this?"},
        files={"file": ("lid.png", PNG, "image/png")},
        headers=c.owner.headers,
    )
    assert sent.status_code == 200, sent.text
    assert "What is this?" in sent.json()["message"]["content"]
    [request] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    [image] = [p for p in request.body["messages"][-1]["content"] if p.get("type") == "image_url"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    _, [kept] = await c.stored()
    assert (kept.kind.value, kept.size_bytes) == ("image", len(PNG))

    again = await c.client.post(
        c.url,
        json={"message": "And now?", "conversation_id": sent.json()["conversation_id"]},
        headers=c.owner.headers,
    )
    assert again.status_code == 200 and again.json()["conversation_id"] == sent.json()["conversation_id"]
    assert (await c.client.post(c.url, json={"message": ""}, headers=c.owner.headers)).status_code == 422

    # The file is the org's: listed on the message, answered to members, not to another org.
    shown = await c.client.get(
        f"/api/v1/conversations/{sent.json()['conversation_id']}", headers=c.owner.headers
    )
    [url] = [a["url"] for m in shown.json()["messages"] for a in m["attachments"]]
    assert (await c.client.get(url, headers=c.owner.headers)).content == PNG
    stranger = await create_account(c.session, c.settings, email="stranger@example.com")
    assert (await c.client.get(url, headers=stranger.headers)).status_code == 404


async def test_a_pdf_reaches_the_prompt_and_voice_without_transcription_answers_200(
    chat: Chat, fake_llm: FakeLLMServer
) -> None:
    c = chat
    pdf = await c.client.post(
        c.url,
        data={"message": "When does it ship?"},
        files={"file": ("order.pdf", _pdf(PDF_TEXT.decode()), "application/pdf")},
        headers=c.owner.headers,
    )
    assert pdf.status_code == 200 and "Leeds warehouse" in pdf.json()["message"]["content"]
    voice = await c.client.post(
        c.url, files={"file": ("note.ogg", OGG, "audio/ogg")}, headers=c.owner.headers
    )
    assert voice.status_code == 200 and voice.json()["message"]["content"] == VOICE_NOT_SET_UP
    assert voice.json()["usage"]["input_tokens"] == 0


async def test_the_api_refuses_too_large_413_and_refused_types_415_storing_nothing(
    chat: Chat, fake_llm: FakeLLMServer
) -> None:
    c = chat
    big = await c.client.post(
        c.url, files={"file": ("big.png", bytes(2 * 1024 * 1024), "image/png")}, headers=c.owner.headers
    )
    assert (
        big.status_code == 413
        and big.json()["detail"] == "That file is too large: I can read files up to 1 MB."
    )
    exe = await c.client.post(
        c.url,
        files={"file": ("setup.exe", b"MZ" + bytes(64), "application/x-msdownload")},
        headers=c.owner.headers,
    )
    assert exe.status_code == 415 and "cannot open that kind of file" in exe.json()["detail"]
    empty = await c.client.post(
        c.url, data={"message": " "}, files={"file": ("", b"", "")}, headers=c.owner.headers
    )
    assert empty.status_code == 400
    assert await c.stored() == ([], []) and not fake_llm.requests


async def test_the_dashboard_chat_sends_files_and_shows_them_in_the_thread(
    chat: Chat, fake_llm: FakeLLMServer
) -> None:
    c = chat
    await log_in(c.client, c.owner.user.email)
    page = await c.client.get(f"/app/agents/{c.agent_id}/chat")
    assert 'type="file" name="file"' in page.text and 'enctype="multipart/form-data"' in page.text
    csrf = csrf_of(page)
    sent = await c.client.post(
        f"/app/agents/{c.agent_id}/chat",
        data={"csrf": csrf, "message": "Look"},
        files={"file": ("lid.png", PNG, "image/png")},
    )
    assert sent.status_code == 303, sent.text
    streamed = await c.client.post(
        f"/app/agents/{c.agent_id}/chat",
        data={"csrf": csrf, "message": ""},
        files={"file": ("order.pdf", _pdf(PDF_TEXT.decode()), "application/pdf")},
        headers={"Accept": "text/event-stream", "X-CSRF-Token": csrf},
    )
    assert streamed.status_code == 200 and "Leeds warehouse" in streamed.text
    _, files = await c.stored()
    image = next(f for f in files if f.kind.value == "image")
    document = next(f for f in files if f.kind.value == "document")
    thread = await c.client.get(f"/app/agents/{c.agent_id}/chat")
    assert f'<img src="/app/inbox/{image.conversation_id}/attachments/{image.id}"' in thread.text
    assert f'/attachments/{document.id}" download>order.pdf</a>' in thread.text
    assert "[file: order.pdf]" in thread.text
    shown = await c.client.get(f"/app/inbox/{image.conversation_id}/attachments/{image.id}")
    assert shown.status_code == 200 and shown.content == PNG

    refused = await c.client.post(
        f"/app/agents/{c.agent_id}/chat",
        data={"csrf": csrf, "message": "run this"},
        files={"file": ("setup.exe", b"MZ" + bytes(64), "application/x-msdownload")},
    )
    assert refused.status_code == 200 and "cannot open that kind of file" in refused.text
    assert len((await c.stored())[1]) == 2
