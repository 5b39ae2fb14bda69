"""Files a visitor attaches in the web chat widget: multipart on the widget's message route, read as
Telegram's are, answered in the thread, and shown back to that visitor only."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.conversations.models import Message, MessageAttachment
from hutch.db.engine import Database
from hutch.settings import Settings
from hutch.turns.media import VOICE_NOT_SET_UP
from tests.channels.test_media import OGG, PDF_TEXT, PNG, _pdf
from tests.channels.test_webchat import parse_sse
from tests.conftest import asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer

SHOP = "https://shop.example"


@dataclass
class Widget:
    client: AsyncClient
    session: AsyncSession
    owner: Account
    token: str
    visitor: str
    settings: Settings

    @property
    def api(self) -> str:
        return f"/api/v1/widget/{self.token}"

    async def attach(
        self, filename: str, data: bytes, content_type: str, text: str = "", visitor: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        answer = await self.client.post(
            f"{self.api}/messages",
            data={"visitor_id": visitor or self.visitor, "text": text},
            files={"file": (filename, data, content_type)},
            headers={"Origin": SHOP, "Accept": "text/event-stream"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == SHOP
        return parse_sse(answer.text)

    async def stored(self) -> tuple[list[Message], list[MessageAttachment]]:
        org = self.owner.org.id
        messages = await self.session.scalars(
            select(Message).where(Message.org_id == org).order_by(Message.seq)
        )
        files = await self.session.scalars(select(MessageAttachment).where(MessageAttachment.org_id == org))
        return list(messages), list(files)


@pytest.fixture
async def widget(
    settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> AsyncIterator[Widget]:
    resources = build_test_resources(settings, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents",
            json={"name": "Shop", "model": "openai/gpt-4o-mini", "audience": "public"},
            headers=owner.headers,
        )
        created = await client.post(
            f"/api/v1/agents/{agent.json()['id']}/channels/webchat",
            json={"allowed_origins": [SHOP]},
            headers=owner.headers,
        )
        assert created.status_code == 201, created.text
        yield Widget(client, session, owner, created.json()["token"], secrets.token_urlsafe(18), settings)
    await resources.close()


async def test_an_image_reaches_a_vision_model_is_kept_and_shown_to_its_visitor_only(
    widget: Widget, fake_llm: FakeLLMServer
) -> None:
    w = widget
    events = await w.attach("lid.png", PNG, "image/png", text="Is this lid broken?")
    assert events[-1][0] == "done" and "Is this lid broken?" in events[-1][1]["content"]
    [request] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
    user = [m for m in request.body["messages"] if m["role"] == "user"][-1]
    [image] = [p for p in user["content"] if p.get("type") == "image_url"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages, [kept] = await w.stored()
    assert (kept.kind.value, kept.filename, kept.size_bytes) == ("image", "lid.png", len(PNG))
    assert kept.message_id == messages[0].id and messages[0].content == "Is this lid broken?"

    history = await w.client.get(
        f"{w.api}/messages", params={"visitor_id": w.visitor}, headers={"Origin": SHOP}
    )
    [shown] = history.json()["items"][0]["attachments"]
    assert shown["kind"] == "image" and shown["url"] == f"{w.api}/attachments/{kept.id}"
    mine = await w.client.get(shown["url"], params={"visitor_id": w.visitor})
    assert mine.status_code == 200 and mine.content == PNG and mine.headers["content-type"] == "image/png"
    assert mine.headers["x-content-type-options"] == "nosniff"
    other_visitor = await w.client.get(shown["url"], params={"visitor_id": secrets.token_urlsafe(18)})
    assert other_visitor.status_code == 404

    # Another org's widget, with its own visitor: the file is not reachable through it either.
    stranger = await create_account(w.session, w.settings, email="stranger@example.com")
    other_agent = await w.client.post(
        "/api/v1/agents", json={"name": "Other", "audience": "public"}, headers=stranger.headers
    )
    other_widget = await w.client.post(
        f"/api/v1/agents/{other_agent.json()['id']}/channels/webchat",
        json={"allowed_origins": [SHOP]},
        headers=stranger.headers,
    )
    crossed = f"/api/v1/widget/{other_widget.json()['token']}/attachments/{kept.id}"
    assert (await w.client.get(crossed, params={"visitor_id": w.visitor})).status_code == 404


async def test_a_pdf_is_read_into_the_prompt(widget: Widget, fake_llm: FakeLLMServer) -> None:
    events = await widget.attach("order.pdf", _pdf(PDF_TEXT.decode()), "application/pdf", text="When?")
    assert "Leeds warehouse" in events[-1][1]["content"]  # the fake model echoes its prompt
    [user, _], [kept] = await widget.stored()
    assert user.content == "When?" and kept.kind.value == "document" and "Order 5521" in (kept.text or "")


async def test_refused_files_are_answered_in_the_thread_and_nothing_is_stored(
    widget: Widget, fake_llm: FakeLLMServer
) -> None:
    w = widget
    [(name, done)] = await w.attach("setup.exe", b"MZ" + bytes(100), "application/x-msdownload")
    assert (
        name == "done" and done["status"] == "refused" and "cannot open that kind of file" in done["content"]
    )
    owner_org = w.owner.org.id
    await w.session.execute(update(Org).where(Org.id == owner_org).values(plan="snapshots"))  # images ≤ 1 MB
    await w.session.commit()
    [(_, big)] = await w.attach("big.png", bytes(2 * 1024 * 1024), "image/png")
    assert big["status"] == "refused" and "too large" in big["content"] and "1 MB" in big["content"]
    [(_, voice)] = await w.attach("note.ogg", OGG, "audio/ogg")
    assert "does not accept voice notes" in voice["content"]
    assert await w.stored() == ([], []) and not fake_llm.requests


async def test_a_voice_recording_without_transcription_is_kept_and_answered_plainly(
    widget: Widget, fake_llm: FakeLLMServer
) -> None:
    events = await widget.attach("recording.webm", OGG, "audio/webm")
    assert events[-1][1]["content"] == VOICE_NOT_SET_UP
    [user, answer], [kept] = await widget.stored()
    assert (
        user.content == "[voice note]" and answer.content == VOICE_NOT_SET_UP and kept.kind.value == "audio"
    )
    assert not fake_llm.requests


async def test_the_widget_script_has_an_accessible_attach_button(widget: Widget) -> None:
    script = (await widget.client.get("/widget.js")).text
    assert 'aria-label="Attach a file"' in script and 'type="file"' in script
    assert 'aria-label="Remove the attached file"' in script and "new FormData()" in script
