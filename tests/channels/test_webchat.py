"""The web chat widget: created by the owner, used cross-origin by anonymous visitors, within limits."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.conversations.models import Conversation, Message
from hutch.db.engine import Database
from hutch.settings import Settings
from tests.conftest import asgi_client, build_test_resources
from tests.factories import Account, create_account

SHOP = "https://shop.example"


def new_visitor() -> str:
    return secrets.token_urlsafe(18)


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@dataclass
class Widget:
    client: AsyncClient
    session: AsyncSession
    owner: Account
    agent_id: str
    channel: dict[str, Any]

    @property
    def api(self) -> str:
        return f"/api/v1/widget/{self.channel['token']}"

    async def send(self, visitor: str, text: str, origin: str | None = SHOP) -> Any:
        headers = {"Accept": "text/event-stream"} | ({"Origin": origin} if origin else {})
        return await self.client.post(
            f"{self.api}/messages", json={"visitor_id": visitor, "text": text}, headers=headers
        )


@pytest.fixture
async def widget(
    settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> AsyncIterator[Widget]:
    configured = settings.model_copy(
        update={"widget_visitor_per_minute": 3, "allowed_origins": ["https://dashboard.example"]}
    )
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents",
            json={"name": "Shop helper", "model": "demo/echo", "audience": "public"},
            headers=owner.headers,
        )
        created = await client.post(
            f"/api/v1/agents/{agent.json()['id']}/channels/webchat",
            json={"allowed_origins": ["https://Shop.example:443/", "http://localhost:8080"]},
            headers=owner.headers,
        )
        assert created.status_code == 201, created.text
        yield Widget(client, session, owner, agent.json()["id"], created.json())


async def test_the_owner_gets_a_snippet_for_the_listed_sites(widget: Widget) -> None:
    w = widget
    assert w.channel["type"] == "webchat" and w.channel["token"].startswith("wc_")
    assert w.channel["allowed_origins"] == ["http://localhost:8080", SHOP]
    assert w.channel["snippet"] == (
        f'<script src="https://hutch.example/widget.js" data-hutch-widget="{w.channel["token"]}" async>'
        "</script>"
    )
    listed = await w.client.get(f"/api/v1/agents/{w.agent_id}/channels", headers=w.owner.headers)
    assert [c["id"] for c in listed.json()["items"]] == [w.channel["id"]]

    changed = await w.client.patch(
        f"/api/v1/agents/{w.agent_id}/channels/{w.channel['id']}",
        json={"allowed_origins": ["https://www.shop.example"]},
        headers=w.owner.headers,
    )
    assert changed.status_code == 200 and changed.json()["allowed_origins"] == ["https://www.shop.example"]

    script = await w.client.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "data-hutch-widget" in script.text


@pytest.mark.parametrize(
    "origins",
    [[], ["shop.example"], ["https://shop.example/path"], ["ftp://shop.example"], ["https://a.example"] * 21],
)
async def test_bad_origins_are_refused(widget: Widget, origins: list[str]) -> None:
    answer = await widget.client.post(
        f"/api/v1/agents/{widget.agent_id}/channels/webchat",
        json={"allowed_origins": origins},
        headers=widget.owner.headers,
    )
    assert answer.status_code == 422


async def test_widgets_are_for_public_agents(widget: Widget) -> None:
    personal = await widget.client.post(
        "/api/v1/agents", json={"name": "Mine", "audience": "personal"}, headers=widget.owner.headers
    )
    answer = await widget.client.post(
        f"/api/v1/agents/{personal.json()['id']}/channels/webchat",
        json={"allowed_origins": [SHOP]},
        headers=widget.owner.headers,
    )
    assert answer.status_code == 409 and "public" in answer.json()["detail"]


async def test_a_visitor_chats_and_finds_the_conversation_again(widget: Widget) -> None:
    w = widget
    config = await w.client.get(w.api, headers={"Origin": SHOP})
    assert config.status_code == 200 and config.json()["agent_name"] == "Shop helper"
    assert config.headers["access-control-allow-origin"] == SHOP

    visitor = new_visitor()
    answer = await w.send(visitor, "Do you ship to Norway?")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["access-control-allow-origin"] == SHOP
    events = parse_sse(answer.text)
    assert events[-1] == (
        "done",
        {"content": "[Demo — no AI] You said: Do you ship to Norway?", "status": "ok"},
    )
    assert "".join(data["content"] for name, data in events if name == "delta") == events[-1][1]["content"]

    history = await w.client.get(
        f"{w.api}/messages", params={"visitor_id": visitor}, headers={"Origin": SHOP}
    )
    assert [line["role"] for line in history.json()["items"]] == ["user", "assistant"]
    stranger = await w.client.get(f"{w.api}/messages", params={"visitor_id": new_visitor()})
    assert stranger.json()["items"] == []  # another browser sees nothing of it

    conversation = await w.session.scalar(select(Conversation).where(Conversation.agent_id == w.agent_id))
    assert conversation is not None and conversation.channel == "webchat"
    assert conversation.end_user == f"webchat:{w.channel['id']}:{visitor}"

    reset = await w.client.post(f"{w.api}/reset", json={"visitor_id": visitor}, headers={"Origin": SHOP})
    assert reset.status_code == 204
    again = await w.client.get(f"{w.api}/messages", params={"visitor_id": visitor})
    assert again.json()["items"] == []

    usage = await w.client.get(f"/api/v1/agents/{w.agent_id}/channels/usage", headers=w.owner.headers)
    [today] = usage.json()["items"]
    assert (today["channel"], today["inbound"], today["outbound"]) == ("webchat", 1, 1)


async def test_other_sites_are_refused_and_preflights_answered(widget: Widget) -> None:
    w = widget
    foreign = await w.send(new_visitor(), "hi", origin="https://evil.example")
    assert foreign.status_code == 403 and "not allowed" in foreign.json()["detail"]
    preflight = await w.client.options(
        f"{w.api}/messages",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # The dashboard's own CORS list still applies to the rest of the API.
    dashboard = await w.client.options(
        "/api/v1/agents",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"},
    )
    assert dashboard.status_code == 400
    stored = await w.session.scalar(
        select(func.count()).select_from(Message).where(Message.org_id == w.owner.org.id)
    )
    assert stored == 0


async def test_limits_answer_politely_and_store_nothing(widget: Widget) -> None:
    w = widget
    unknown = await w.client.get("/api/v1/widget/wc_nope")
    assert unknown.status_code == 404
    bad_visitor = await w.send("short", "hi")
    assert bad_visitor.status_code == 422

    visitor = new_visitor()
    for n in range(3):
        assert (await w.send(visitor, f"message {n}")).status_code == 200
    limited = await w.send(visitor, "one more")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.headers["access-control-allow-origin"] == SHOP  # the page can read why

    await w.session.execute(update(Org).where(Org.id == w.owner.org.id).values(plan="metered"))
    await w.session.commit()
    broke = await w.send(new_visitor(), "hello")
    assert broke.status_code == 402
    assert "plan limit" in broke.json()["detail"] and "Metered" not in broke.json()["detail"]

    await w.client.patch(f"/api/v1/agents/{w.agent_id}", json={"status": "paused"}, headers=w.owner.headers)
    paused = await w.send(new_visitor(), "hello")
    assert paused.status_code == 409
    stored = await w.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.org_id == w.owner.org.id, Message.role == "user")
    )
    assert stored == 3

    removed = await w.client.delete(
        f"/api/v1/agents/{w.agent_id}/channels/{w.channel['id']}", headers=w.owner.headers
    )
    assert removed.status_code == 204
    assert (await w.client.get(w.api)).status_code == 404


async def test_one_visitor_past_the_agents_day_limit_is_told_to_come_back(widget: Widget) -> None:
    w = widget
    changed = await w.client.patch(
        f"/api/v1/agents/{w.agent_id}", json={"end_user_messages_per_day": 2}, headers=w.owner.headers
    )
    assert changed.status_code == 200, changed.text
    eager, other = new_visitor(), new_visitor()
    for n in range(2):
        assert (await w.send(eager, f"message {n}")).status_code == 200
    refused = await w.send(eager, "one more")
    assert refused.status_code == 429
    assert refused.json()["detail"] == "You have sent me a lot of messages today. Please come back tomorrow."
    assert (await w.send(other, "hello")).status_code == 200
