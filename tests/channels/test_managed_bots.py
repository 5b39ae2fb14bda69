"""Managed Telegram bots: a customer creates a bot of their own through the platform bot, and it works."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.channels.jobs import NOTIFY_JOB
from hutch.channels.models import Channel, ManagedBotRequest
from hutch.channels.telegram.jobs import TOKEN_REVOKED
from hutch.channels.telegram.managed import BAD_LINK
from hutch.channels.telegram.platform import SETUP_JOB, platform_secret
from hutch.channels.telegram.profile import BOT_COMMANDS
from hutch.channels.telegram.usernames import is_valid_username
from hutch.db.engine import Database
from hutch.notifications.models import OutboundEmail
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.telegram import (
    FakeBot,
    FakeTelegramServer,
    Sender,
    managed_bot_update,
    new_bot_token,
    start_update,
    text_update,
    webhook_headers,
)
from tests.web.test_dashboard import csrf_of, log_in

MANAGER_TOKEN = "555000222:AAE_platform_bot_that_manages_bots"
ADA = Sender()
BOB = Sender(id=5_550_002, first_name="Bob", last_name=None, username="bob_b")


@dataclass
class Managed:
    client: AsyncClient
    telegram: FakeTelegramServer
    resources: Resources
    session: AsyncSession
    settings: Settings
    owner: Account
    agent_id: str

    async def post(self, update: dict[str, Any], path: str = "platform", secret: str | None = None) -> None:
        secret = platform_secret(self.settings) if secret is None else secret
        answer = await self.client.post(
            f"/webhooks/telegram/{path}", json=update, headers=webhook_headers(secret)
        )
        assert answer.status_code == 200, answer.text

    async def run_jobs(self) -> list[Any]:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return await self.resources.jobs.run_pending()

    async def link(self) -> str:
        answer = await self.client.post(
            f"/api/v1/agents/{self.agent_id}/channels/telegram/managed", headers=self.owner.headers
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["link"])

    async def open(self, link: str, sender: Sender = ADA) -> list[str]:
        before = len(self.telegram.sent_texts(sender.id, MANAGER_TOKEN))
        await self.post(start_update(link.split("?start=")[1], sender=sender))
        await self.run_jobs()
        return self.telegram.sent_texts(sender.id, MANAGER_TOKEN)[before:]

    async def create(self, sender: Sender = ADA, **edits: str) -> list[Any]:
        """The user presses the button and confirms Telegram's screen; Telegram tells the platform bot."""
        for sent in self.telegram.press_managed_bot_button(MANAGER_TOKEN, sender, **edits):
            await self.post(sent)
        return await self.run_jobs()

    async def channels(self) -> list[dict[str, Any]]:
        answer = await self.client.get(f"/api/v1/agents/{self.agent_id}/channels", headers=self.owner.headers)
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def bot(self, username: str) -> FakeBot:
        return next(b for b in self.telegram.bots.values() if b.username == username)


def _deployment(telegram: FakeTelegramServer, settings: Settings, token: str | None) -> Settings:
    update: dict[str, Any] = {"telegram_api_base": telegram.base_url}
    if token is not None:
        update["telegram_bot_token"] = SecretStr(token)
    return settings.model_copy(update=update)


@pytest.fixture
async def managed(
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Managed]:
    telegram_server.reset()
    telegram_server.add_bot(MANAGER_TOKEN, "hutch_manager_bot", can_manage_bots=True)
    configured = _deployment(telegram_server, settings, MANAGER_TOKEN)
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents",
            json={"name": "Shop Helper", "model": "demo/echo", "audience": "public"},
            headers=owner.headers,
        )
        assert agent.status_code == 201, agent.text
        yield Managed(client, telegram_server, resources, session, configured, owner, agent.json()["id"])


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (200, 30, 30, 255)).save(out, format="PNG")
    return out.getvalue()


async def test_a_customer_gets_a_bot_of_their_own_in_two_taps(managed: Managed) -> None:
    m = managed
    avatar = await m.client.put(
        f"/api/v1/agents/{m.agent_id}/avatar",
        files={"file": ("a.png", _png(), "image/png")},
        headers=m.owner.headers,
    )
    assert avatar.status_code == 200
    assert isinstance(m.resources.jobs, RecordingJobQueue)
    await m.resources.jobs.execute(SETUP_JOB, {}, job_id=0, attempt=0, resources=m.resources)
    manager_hook = m.telegram.webhook(MANAGER_TOKEN)
    assert manager_hook is not None and "managed_bot" in (manager_hook.allowed_updates or [])

    answer = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/telegram/managed", headers=m.owner.headers
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"link", "expires_at"}
    assert body["link"].startswith("https://t.me/hutch_manager_bot?start=")
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=25) < expires - datetime.now(UTC) <= timedelta(minutes=30)

    greeting = await m.open(body["link"])
    assert len(greeting) == 1 and "Shop Helper" in greeting[0]
    keyboard = m.telegram.sent_messages(ADA.id, MANAGER_TOKEN)[-1].keyboard
    assert keyboard is not None
    ask = keyboard["keyboard"][0][0]["request_managed_bot"]
    assert ask["suggested_name"] == "Shop Helper" and is_valid_username(ask["suggested_username"])
    assert isinstance(ask["request_id"], int)

    outcomes = await m.create()
    assert "connected" in outcomes
    [channel] = await m.channels()
    assert channel["type"] == "telegram" and channel["status"] == "active"
    assert channel["bot_username"] == ask["suggested_username"]
    bot = m.bot(channel["bot_username"])
    # Connected like a hand-connected bot: its own webhook and secret, commands, name, description, photo.
    assert (
        bot.webhook is not None
        and bot.webhook.url == f"https://hutch.example/webhooks/telegram/{channel['id']}"
    )
    assert bot.webhook.secret_token and bot.webhook.secret_token != platform_secret(m.settings)
    assert [c["command"] for c in next(iter(bot.commands.values()))] == [c for c, _ in BOT_COMMANDS]
    assert bot.first_name == "Shop Helper" and "Shop Helper" in bot.description
    assert bot.shown_to("es").description.startswith("¡Hola! Soy Shop Helper")  # each language its own
    assert bot.profile_photo is not None and bot.profile_photo.startswith(b"\xff\xd8")
    done = m.telegram.sent_messages(ADA.id, MANAGER_TOKEN)[-1]
    assert f"@{bot.username}" in done.plain_text and done.keyboard == {"remove_keyboard": True}
    # Whoever made the bot is its verified owner, with no code to send.
    stored = await m.session.get(Channel, channel["id"])
    assert stored is not None and stored.owner_external_id == str(ADA.id) and stored.managed
    request = await m.session.scalar(
        select(ManagedBotRequest).where(ManagedBotRequest.agent_id == m.agent_id)
    )
    assert (
        request is not None
        and request.status.value == "connected"
        and request.telegram_user_id == str(ADA.id)
    )

    # The bot answers people like any of the agent's bots.
    customer = Sender(id=7_770_001, first_name="Carol", username="carol")
    await m.post(
        text_update("Do you ship to Lisbon?", sender=customer), channel["id"], bot.webhook.secret_token
    )
    await m.run_jobs()
    [reply] = m.telegram.sent_texts(customer.id, bot.token)
    assert reply.endswith("You said: Do you ship to Lisbon?")

    # Telegram sending the update again, or another one for the same bot, connects nothing more.
    await m.post(managed_bot_update(ADA, bot))
    assert await m.run_jobs() == ["ignored: the bot is connected already"]
    assert len(await m.channels()) == 1


async def test_a_link_works_once_for_whoever_opens_it_first(managed: Managed) -> None:
    m = managed
    link = await m.link()
    await m.open(link)
    assert await m.open(link, BOB) == [BAD_LINK]
    assert m.telegram.sent_messages(BOB.id, MANAGER_TOKEN)[-1].keyboard is None
    assert await m.open(link) == [BAD_LINK]  # spent, even for its first user


async def test_an_expired_link_shows_no_button(managed: Managed) -> None:
    m = managed
    link = await m.link()
    past = datetime.now(UTC) - timedelta(seconds=1)
    await m.session.execute(update(ManagedBotRequest).values(expires_at=past))
    assert await m.open(link) == [BAD_LINK]
    assert m.telegram.sent_messages(ADA.id, MANAGER_TOKEN)[-1].keyboard is None


async def test_a_bot_made_by_someone_who_did_not_open_the_link_is_not_connected(managed: Managed) -> None:
    m = managed
    await m.open(await m.link())  # Ada opened it
    stranger_bot = m.telegram.add_bot(new_bot_token(), "strangers_bot")
    stranger_bot.manager_id = m.telegram.bots[MANAGER_TOKEN].id
    await m.post(managed_bot_update(BOB, stranger_bot))
    assert await m.run_jobs() == ["ignored: no request of this Telegram user is waiting"]
    assert await m.channels() == []
    assert m.telegram.recorded("getManagedBotToken") == []


async def test_the_created_message_alone_connects_nothing(managed: Managed) -> None:
    m = managed
    await m.open(await m.link())
    hook = m.telegram.bots[MANAGER_TOKEN]
    hook.webhook = None
    await m.resources.telegram.set_webhook(MANAGER_TOKEN, "https://hutch.example/x", "s", ["message"])
    outcomes = await m.create()  # Telegram sends only the service message: the webhook did not ask for more
    assert outcomes == ["noted: the managed_bot update connects the bot"]
    assert await m.channels() == []


async def test_a_revoked_token_breaks_the_bot_once_alerts_the_owner_and_one_tap_reconnects(
    managed: Managed,
) -> None:
    m = managed
    await m.open(await m.link())
    await m.create()
    [channel] = await m.channels()
    bot = m.bot(channel["bot_username"])
    secret = bot.webhook.secret_token if bot.webhook else None
    m.telegram.revoke_token(bot.token)  # the owner revoked it in @BotFather
    await m.post(text_update("hello?", sender=BOB), channel["id"], secret)
    outcomes = await m.run_jobs()  # the answer, then the owners' email and chats
    assert outcomes[0] == f"not delivered: {TOKEN_REVOKED}"
    [broken] = await m.channels()
    assert broken["status"] == "error" and "token" in (broken["last_error"] or "")
    emails = (
        await m.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "channel_broken"))
    ).all()
    assert len(emails) == 1 and bot.username in emails[0].subject
    assert isinstance(m.resources.jobs, RecordingJobQueue)
    # Another message: answered by nobody, no retry, and no second alert.
    await m.post(text_update("still there?", sender=BOB), channel["id"], secret)
    m.resources.jobs.deferred = [j for j in m.resources.jobs.deferred if j[0] != NOTIFY_JOB]
    await m.run_jobs()
    count = select(func.count()).select_from(OutboundEmail).where(OutboundEmail.kind == "channel_broken")
    assert await m.session.scalar(count) == 1

    answer = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/{channel['id']}/reconnect", headers=m.owner.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["channel"]["status"] == "active" and answer.json()["link"] is None
    assert bot.webhook is not None and bot.webhook.secret_token != secret  # a fresh secret, on the new token
    await m.post(text_update("back?", sender=BOB), channel["id"], bot.webhook.secret_token)
    await m.run_jobs()
    assert m.telegram.sent_texts(BOB.id, bot.token)[-1].endswith("You said: back?")

    # The owner deleted the bot: reconnecting hands out a link to make another.
    m.telegram.remove_bot(bot.token)
    answer = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/{channel['id']}/reconnect", headers=m.owner.headers
    )
    assert answer.status_code == 200 and answer.json()["channel"] is None
    assert answer.json()["link"].startswith("https://t.me/hutch_manager_bot?start=")
    assert await m.channels() == []


async def test_the_plans_telegram_bots_count_every_kind_of_bot(managed: Managed) -> None:
    m = managed
    await m.session.execute(update(Org).where(Org.id == m.owner.org.id).values(plan="one-bot"))
    own = new_bot_token()
    m.telegram.add_bot(own, "own_shop_bot")
    hand = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/telegram", json={"bot_token": own}, headers=m.owner.headers
    )
    assert hand.status_code == 201, hand.text
    refused = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/telegram/managed", headers=m.owner.headers
    )
    assert refused.status_code == 402 and "One bot" in refused.json()["detail"]
    other = await m.client.post(
        "/api/v1/agents", json={"name": "Second", "model": "demo/echo"}, headers=m.owner.headers
    )
    second = new_bot_token()
    m.telegram.add_bot(second, "second_shop_bot")
    again = await m.client.post(
        f"/api/v1/agents/{other.json()['id']}/channels/telegram",
        json={"bot_token": second},
        headers=m.owner.headers,
    )
    assert again.status_code == 402 and "One bot" in again.json()["detail"]
    by_factory = await m.client.post(
        f"/api/v1/agents/{other.json()['id']}/channels/telegram/auto", json={}, headers=m.owner.headers
    )
    assert by_factory.status_code == 402 and "One bot" in by_factory.json()["detail"]


async def test_a_link_asked_before_the_limit_was_reached_connects_nothing_past_it(managed: Managed) -> None:
    m = managed
    link = await m.link()
    await m.open(link)
    await m.session.execute(update(Org).where(Org.id == m.owner.org.id).values(plan="one-bot"))
    own = new_bot_token()
    m.telegram.add_bot(own, "own_shop_bot")
    hand = await m.client.post(
        f"/api/v1/agents/{m.agent_id}/channels/telegram", json={"bot_token": own}, headers=m.owner.headers
    )
    assert hand.status_code == 201
    outcomes = await m.create()
    assert any(str(o).startswith("failed: The One bot plan allows 1 Telegram bot") for o in outcomes)
    assert "could not connect" in m.telegram.sent_texts(ADA.id, MANAGER_TOKEN)[-1]
    assert [c["bot_username"] for c in await m.channels()] == ["own_shop_bot"]


async def test_without_a_platform_bot_or_bot_management_there_is_no_link(
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> None:
    telegram_server.reset()
    plain_token = "555000333:AAE_platform_bot_without_management"
    telegram_server.add_bot(plain_token, "plain_platform_bot")
    for token, status, words in (
        (None, 503, "HUTCH_TELEGRAM_BOT_TOKEN"),
        (plain_token, 503, "bot management"),
    ):
        resources = build_test_resources(
            _deployment(telegram_server, settings, token), database, database_url
        )
        async with asgi_client(create_app(resources=resources)) as client:
            owner = await create_account(session, settings)
            agent = await client.post(
                "/api/v1/agents", json={"name": "A", "model": "demo/echo"}, headers=owner.headers
            )
            answer = await client.post(
                f"/api/v1/agents/{agent.json()['id']}/channels/telegram/managed", headers=owner.headers
            )
            assert answer.status_code == status and words in answer.json()["detail"], answer.text


async def test_the_channels_tab_offers_a_managed_bot_and_hears_when_it_is_connected(managed: Managed) -> None:
    m = managed
    m.client.headers.clear()
    await log_in(m.client, m.owner.user.email)
    tab = await m.client.get(f"/app/agents/{m.agent_id}/channels")
    assert tab.status_code == 200 and "Create my Telegram bot" in tab.text
    assert tab.text.index("Create my Telegram bot") < tab.text.index("Connect bot")  # offered first
    shown = await m.client.post(
        f"/app/agents/{m.agent_id}/channels/telegram/managed", data={"csrf": csrf_of(tab)}
    )
    assert shown.status_code == 200 and "<svg" in shown.text
    link = re.search(r'href="(https://t\.me/hutch_manager_bot\?start=[^"]+)"', shown.text)
    poll = re.search(r'data-poll="([^"]+)"', shown.text)
    assert link and poll
    assert (await m.client.get(poll.group(1))).json()["status"] == "waiting"
    await m.open(link.group(1))
    await m.create()
    state = (await m.client.get(poll.group(1))).json()
    assert state["status"] == "connected" and state["bot_username"]


async def test_the_new_bots_menu_and_descriptions_are_in_the_orgs_language(managed: Managed) -> None:
    m = managed
    spanish = await m.client.patch("/api/v1/org", json={"language": "es"}, headers=m.owner.headers)
    assert spanish.status_code == 200
    await m.open(await m.link())
    assert "connected" in await m.create()
    [channel] = await m.channels()
    bot = m.bot(channel["bot_username"])
    menu = {c["command"]: c["description"] for c in bot.commands[('{"type": "default"}', "")]}
    assert menu["help"] == "Lo que puedo hacer" and menu["human"] == "Pedir una persona del equipo"
    assert bot.description.startswith("¡Hola! Soy Shop Helper, un asistente de IA.")
    assert bot.short_description == "Shop Helper: un asistente de IA."
    # That is what every language without its own sees; each language Hutch speaks has its own.
    spanish, english, german = bot.shown_to("es"), bot.shown_to("en-GB"), bot.shown_to("de")
    assert german == spanish and spanish.commands == bot.commands[('{"type": "default"}', "")]
    assert english.description.startswith("Hello! I am Shop Helper, an AI assistant.")
    assert english.short_description == "Shop Helper: an AI assistant."
    assert {c["command"]: c["description"] for c in english.commands}[
        "human"
    ] == "Ask for a person from the team"
    assert english.name == spanish.name == "Shop Helper" and not bot.names  # a name is in no language
    assert set(bot.descriptions) == set(bot.short_descriptions) == {"en", "es"}
    # One call per method and language; the name once.
    calls = Counter(c.method for c in m.telegram.recorded(token=bot.token) if c.method.startswith("setMy"))
    assert calls == {"setMyCommands": 3, "setMyDescription": 3, "setMyShortDescription": 3, "setMyName": 1}
