"""Personal agents through the operator's Telegram bot: deep-link linking, routing by chat, buy buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.channels.jobs import NOTIFY_JOB
from hutch.channels.models import ExternalEvent
from hutch.channels.telegram.platform import COMMANDS, SETUP_JOB, platform_secret
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.telegram import (
    FakeTelegramServer,
    Sender,
    callback_query_update,
    text_update,
    webhook_headers,
)

PLATFORM_TOKEN = "555000111:AAE_platform_bot_token_for_everyone"
ADA = Sender()
BOB = Sender(id=5_550_002, first_name="Bob", last_name=None, username="bob_b")


@dataclass
class Platform:
    client: AsyncClient
    telegram: FakeTelegramServer
    resources: Resources
    session: AsyncSession
    settings: Settings
    owner: Account
    agent_id: str

    async def post(self, update: dict[str, Any], secret: str | None = None) -> int:
        headers = webhook_headers(platform_secret(self.settings) if secret is None else secret)
        response = await self.client.post("/webhooks/telegram/platform", json=update, headers=headers)
        return response.status_code

    async def run_jobs(self) -> list[Any]:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return await self.resources.jobs.run_pending()

    async def say(self, text: str, sender: Sender = ADA) -> list[str]:
        before = len(self.telegram.sent_texts(sender.id, PLATFORM_TOKEN))
        assert await self.post(text_update(text, sender=sender)) == 200
        await self.run_jobs()
        return self.telegram.sent_texts(sender.id, PLATFORM_TOKEN)[before:]

    async def deep_link(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/users/me/channel", json={"channel": "telegram", **body}, headers=self.owner.headers
        )
        assert response.status_code == 201, response.text
        started: dict[str, Any] = response.json()
        return started


@pytest.fixture
async def platform(
    telegram_server: FakeTelegramServer,
    fake_stripe_server: FakeStripe,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Platform]:
    telegram_server.reset()
    fake_stripe_server.reset()
    telegram_server.add_bot(PLATFORM_TOKEN, "hutch_assistant_bot")
    configured = settings.model_copy(
        update={
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_token": SecretStr(PLATFORM_TOKEN),
            "stripe_api_base": fake_stripe_server.base_url,
            "stripe_secret_key": SecretStr(TEST_API_KEY),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            owner = await create_account(session, settings)
            agent = await client.post(
                "/api/v1/agents",
                json={"name": "Jarvis", "model": "demo/echo", "audience": "personal"},
                headers=owner.headers,
            )
            assert agent.status_code == 201
            yield Platform(client, telegram_server, resources, session, configured, owner, agent.json()["id"])
    finally:
        assert resources.stripe is not None
        await resources.stripe.close()


async def test_the_platform_bot_gets_its_webhook_and_a_menu_in_every_language(platform: Platform) -> None:
    p = platform
    assert isinstance(p.resources.jobs, RecordingJobQueue)
    outcome = await p.resources.jobs.execute(SETUP_JOB, {}, job_id=0, attempt=0, resources=p.resources)
    assert outcome == "webhook set"
    webhook = p.telegram.webhook(PLATFORM_TOKEN)
    assert webhook is not None and webhook.url == "https://hutch.example/webhooks/telegram/platform"
    assert webhook.secret_token == platform_secret(p.settings)
    # The menu for everyone in the deployment's default language (English), and one in each language.
    bot = p.telegram.bots[PLATFORM_TOKEN]
    menus = {code: {c["command"]: c["description"] for c in menu} for (_, code), menu in bot.commands.items()}
    assert set(menus) == {"", "en", "es"}
    assert menus[""] == menus["en"] == dict(COMMANDS) and menus["en"]["help"] == "What I can do"
    assert menus["es"]["help"] == "Lo que puedo hacer" and set(menus["es"]) == set(menus[""])
    assert bot.shown_to("es-ES").commands == bot.commands[('{"type": "default"}', "es")]
    assert bot.shown_to("de").commands == bot.commands[('{"type": "default"}', "")]
    calls = len(p.telegram.recorded("setMyCommands", PLATFORM_TOKEN))
    assert calls == 3  # one per language

    # Run again (every start does) on a deployment speaking Spanish by default: one call per language
    # again, the variants as they were, and every other language sees the Spanish menu.
    spanish = replace(p.resources, settings=p.settings.model_copy(update={"default_language": "es"}))
    assert (
        await p.resources.jobs.execute(SETUP_JOB, {}, job_id=1, attempt=0, resources=spanish) == "webhook set"
    )
    assert len(p.telegram.recorded("setMyCommands", PLATFORM_TOKEN)) == calls + 3
    assert bot.shown_to("de").commands == bot.shown_to("es").commands != bot.shown_to("en").commands
    assert {code for _, code in bot.commands} == {"", "en", "es"}
    assert bot.shown_to("en").commands == [{"command": c, "description": d} for c, d in COMMANDS]


async def test_a_deep_link_binds_the_chat_to_the_personal_agent(platform: Platform) -> None:
    p = platform
    assert "not linked" in (await p.say("hello?"))[0]  # an unlinked chat gets instructions

    started = await p.deep_link()
    assert started["link_url"] == f"https://t.me/hutch_assistant_bot?start={started['code']}"
    assert started["status"] == "pending" and started["agent_id"] == p.agent_id
    [welcome] = await p.say(f"/start {started['code']}")
    assert "Linked" in welcome and "Jarvis" in welcome
    assert await p.say("What is on today?") == ["[Demo — no AI] You said: What is on today?"]

    # The code worked once: Bob cannot reuse it to take over Ada's assistant.
    [refused] = await p.say(f"/start {started['code']}", sender=BOB)
    assert "not valid" in refused
    assert "not linked" in (await p.say("hi", sender=BOB))[0]

    links = (await p.client.get("/api/v1/users/me/channels", headers=p.owner.headers)).json()["items"]
    assert [(link["channel"], link["status"], link["address"]) for link in links] == [
        ("telegram", "active", str(ADA.id))
    ]
    removed = await p.client.delete(f"/api/v1/users/me/channels/{links[0]['id']}", headers=p.owner.headers)
    assert removed.status_code == 204
    assert "not linked" in (await p.say("still there?"))[0]


async def test_a_link_for_a_named_user_works_only_for_them(platform: Platform) -> None:
    p = platform
    started = await p.deep_link(telegram_username="@Ada_L")
    assert "not valid" in (await p.say(f"/start {started['code']}", sender=BOB))[0]
    assert "Linked" in (await p.say(f"/start {started['code']}", sender=ADA))[0]


async def test_linking_needs_a_personal_agent_and_a_platform_bot(
    platform: Platform, settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> None:
    p = platform
    other = await create_account(session, settings, email="nobody@example.com", org_name="Empty")
    empty = await p.client.post(
        "/api/v1/users/me/channel", json={"channel": "telegram"}, headers=other.headers
    )
    assert empty.status_code == 409 and "personal agent" in empty.json()["detail"]
    bad_name = await p.client.post(
        "/api/v1/users/me/channel",
        json={"channel": "telegram", "telegram_username": "no spaces allowed"},
        headers=p.owner.headers,
    )
    assert bad_name.status_code == 422

    without_bot = build_test_resources(settings, database, database_url)
    async with asgi_client(create_app(resources=without_bot)) as client:
        answer = await client.post(
            "/api/v1/users/me/channel", json={"channel": "telegram"}, headers=p.owner.headers
        )
        assert answer.status_code == 503 and "HUTCH_TELEGRAM_BOT_TOKEN" in answer.json()["detail"]
        forged = await client.post(
            "/webhooks/telegram/platform", json=text_update("hi"), headers=webhook_headers("guess")
        )
        assert forged.status_code == 403


async def test_a_wrong_secret_stores_nothing(platform: Platform) -> None:
    p = platform
    assert await p.post(text_update("hi", update_id=4242), secret="wrong") == 403
    assert await p.session.get(ExternalEvent, ("telegram:platform", "4242")) is None


async def test_out_of_credits_offers_buy_buttons_that_open_checkout(platform: Platform) -> None:
    p = platform
    started = await p.deep_link()
    await p.say(f"/start {started['code']}")
    [balance] = await p.say("/balance")
    assert "prepaid credits" in balance
    message = p.telegram.sent_messages(ADA.id, PLATFORM_TOKEN)[-1]
    assert message.reply_markup is not None
    buttons = [row[0] for row in message.reply_markup["inline_keyboard"]]
    assert [b["callback_data"] for b in buttons] == ["buy:credits-10", "buy:time-1h"]

    await p.session.execute(update(Org).where(Org.id == p.owner.org.id).values(plan="metered"))
    await p.session.commit()
    [refusal] = await p.say("Are you there?")
    assert "plan limit" in refusal
    assert p.telegram.sent_messages(ADA.id, PLATFORM_TOKEN)[-1].reply_markup is not None

    press = callback_query_update(
        "buy:time-1h", message_id=message.message_id, bot_id=555000111, bot_username="hutch_assistant_bot"
    )
    assert await p.post(press) == 200
    assert await p.run_jobs() == ["checkout sent"]
    checkout = p.telegram.sent_messages(ADA.id, PLATFORM_TOKEN)[-1]
    assert checkout.reply_markup is not None
    [[pay]] = checkout.reply_markup["inline_keyboard"]
    assert pay["url"].startswith("http")


async def test_owners_hear_news_in_their_linked_chat(platform: Platform) -> None:
    p = platform
    started = await p.deep_link()
    await p.say(f"/start {started['code']}")
    assert isinstance(p.resources.jobs, RecordingJobQueue)
    told = await p.resources.jobs.execute(
        NOTIFY_JOB,
        {"org_id": p.owner.org.id, "text": "Your assistant Jarvis is ready."},
        job_id=0,
        attempt=0,
        resources=p.resources,
    )
    assert told == 1
    assert p.telegram.sent_texts(ADA.id, PLATFORM_TOKEN)[-1] == "Your assistant Jarvis is ready."
