"""The chat turn every channel runs: no database connection held while the model answers (on every channel),
turns of one chat in order, and exactly once when a turn stops halfway."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.billing.models import UsageDaily
from hutch.billing.quotas import QUOTA_NOTICE_JOB
from hutch.channels.telegram.service import chat_lock
from hutch.channels.voice.worker import answer_turn
from hutch.conversations.models import Message, MessageRole
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import PostgresServer, RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers
from tests.fakes.twilio import FakeTwilioServer, inbound_whatsapp_webhook

SRC = Path(__file__).resolve().parents[2] / "src" / "hutch"
TOKEN = "626262626:AAE_turn_token_for_the_turn_bot"
OPERATOR = "+15550000001"
PHONE = "+15557654321"
WHATSAPP_HOOK = "https://hutch.example/webhooks/twilio/whatsapp"
SHOP = "https://shop.example"


def test_only_the_unit_of_work_commits() -> None:
    """Every transaction has one owner: a unit of work commits through ``checkpoint`` (which queues the jobs
    asked for with it). A bare ``session.commit()`` elsewhere would leave those jobs unsent."""
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if "db" not in path.relative_to(SRC).parts[:1]
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.commit\(", line)
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilioServer]:
    server = FakeTwilioServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Deployment:
    """Hutch on a database of its own where every phase really commits; Telegram and WhatsApp on fakes."""

    resources: Resources
    client: AsyncClient
    owner: Account
    telegram: FakeTelegramServer
    twilio: FakeTwilioServer
    twilio_token: str
    twilio_sid: str

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    @property
    def checked_out(self) -> int:
        return int(self.resources.database.engine.pool.checkedout())  # type: ignore[attr-defined]

    async def agent(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Turner", "model": "openai/gpt-4o", "audience": "public"} | fields
        created = await self.client.post("/api/v1/agents", json=body, headers=self.owner.headers)
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def telegram_channel(self, agent_id: str) -> tuple[str, str]:
        connected = await self.client.post(
            f"/api/v1/agents/{agent_id}/channels/telegram",
            json={"bot_token": TOKEN},
            headers=self.owner.headers,
        )
        assert connected.status_code == 201, connected.text
        webhook = self.telegram.webhook(TOKEN)
        assert webhook is not None and webhook.secret_token
        return str(connected.json()["id"]), webhook.secret_token

    async def telegram_update(self, channel: tuple[str, str], update: dict[str, Any]) -> None:
        posted = await self.client.post(
            f"/webhooks/telegram/{channel[0]}", json=update, headers=webhook_headers(channel[1])
        )
        assert posted.status_code == 200, posted.text

    async def whatsapp(self, body: str) -> None:
        signed = inbound_whatsapp_webhook(
            WHATSAPP_HOOK,
            self.twilio_token,
            body,
            from_number=PHONE,
            to_number=OPERATOR,
            account_sid=self.twilio_sid,
        )
        posted = await self.client.post(
            "/webhooks/twilio/whatsapp", data=signed.params, headers=signed.headers
        )
        assert posted.status_code == 200, posted.text


@pytest.fixture
async def deployment(
    postgres: PostgresServer,
    migrated_template: str,
    settings: Settings,
    telegram_server: FakeTelegramServer,
    twilio: FakeTwilioServer,
) -> AsyncIterator[Deployment]:
    url = postgres.create_database(prefix="hutch_turns", template=migrated_template)
    telegram_server.reset()
    telegram_server.add_bot(TOKEN, "turn_bot")
    twilio.reset()
    account = twilio.add_account()
    configured = settings.model_copy(
        update={
            "database_url": SecretStr(url),
            "telegram_api_base": telegram_server.base_url,
            "twilio_api_base": twilio.api_base,
            "twilio_account_sid": account.sid,
            "twilio_auth_token": SecretStr(account.auth_token),
            "twilio_whatsapp_from": OPERATOR,
        }
    )
    database = Database(url, pool_size=10, max_overflow=10)
    resources = build_test_resources(configured, database, url)
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            async with database.sessionmaker() as session:
                owner = await create_account(session, settings)
                await session.commit()
            yield Deployment(
                resources, client, owner, telegram_server, twilio, account.auth_token, account.sid
            )
    finally:
        await resources.llm.close()
        await database.dispose()
        postgres.drop_database(url)


async def held_while_the_model_thinks(d: Deployment, fake_llm: FakeLLMServer, turn: Awaitable[Any]) -> int:
    """Connections checked out at the moment the (slow) fake model has the question; the turn must finish."""
    fake_llm.script(ScriptedReply(content="Done, slowly.", delay=0.8))
    asked = len(fake_llm.requests)
    running = asyncio.ensure_future(turn)
    for _ in range(400):
        if len(fake_llm.requests) > asked or running.done():
            break
        await asyncio.sleep(0.01)
    assert not running.done(), "the turn ended before the model was asked"
    await asyncio.sleep(0.1)  # well into the model's answer
    held = d.checked_out
    await running
    return held


CHANNELS = [
    "agent chat",
    "agent chat, streamed",
    "agent with a document",
    "OpenAI API",
    "OpenAI API, streamed",
    "OpenAI API without user",
    "Responses API",
    "Responses API, streamed",
    "Messages API",
    "widget",
    "Telegram",
    "WhatsApp",
    "voice",
    "task",
]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_no_database_connection_is_held_while_the_model_answers(
    deployment: Deployment, fake_llm: FakeLLMServer, channel: str
) -> None:
    """Pooled connections are few; models take seconds. On every channel a turn reads what the model needs
    in phase 1 and commits, so while the model answers nothing is checked out of the pool."""
    d = deployment
    agent = await d.agent()
    headers = d.owner.headers
    turn: Awaitable[Any]
    if channel.startswith("agent"):
        if channel == "agent with a document":
            doc = await d.client.post(
                f"/api/v1/agents/{agent['id']}/documents",
                json={"title": "Warranty", "content": "The warranty lasts two years on every kettle."},
                headers=headers,
            )
            assert doc.status_code == 201, doc.text
            await d.jobs.run_pending()  # ingestion
        stream = {"Accept": "text/event-stream"} if channel.endswith("streamed") else {}
        turn = d.client.post(
            f"/api/v1/agents/{agent['id']}/chat",
            json={"message": "How long is the warranty?"},
            headers=headers | stream,
        )
    elif channel.startswith("OpenAI"):
        key = await d.client.post(
            "/api/v1/api-keys", json={"label": "k", "scopes": ["chat"]}, headers=headers
        )
        body: dict[str, Any] = {"model": agent["slug"], "messages": [{"role": "user", "content": "hi"}]}
        body |= {"stream": channel.endswith("streamed")} | ({} if "without" in channel else {"user": "u1"})
        turn = d.client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key.json()['key']}"}
        )
    elif channel.startswith(("Responses", "Messages")):
        key = await d.client.post(
            "/api/v1/api-keys", json={"label": "k", "scopes": ["chat"]}, headers=headers
        )
        auth = {"Authorization": f"Bearer {key.json()['key']}"}
        if channel.startswith("Responses"):
            asked = {"model": agent["slug"], "input": "hi", "stream": channel.endswith("streamed")}
            turn = d.client.post("/v1/responses", json=asked, headers=auth)
        else:
            message = {"role": "user", "content": "hi"}
            asked = {"model": agent["slug"], "max_tokens": 64, "messages": [message]}
            turn = d.client.post("/v1/messages", json=asked | {"metadata": {"user_id": "u1"}}, headers=auth)
    elif channel == "widget":
        created = await d.client.post(
            f"/api/v1/agents/{agent['id']}/channels/webchat",
            json={"allowed_origins": [SHOP]},
            headers=headers,
        )
        turn = d.client.post(
            f"/api/v1/widget/{created.json()['token']}/messages",
            json={"visitor_id": "v" * 24, "text": "hi"},
            headers={"Accept": "text/event-stream", "Origin": SHOP},
        )
    elif channel == "Telegram":
        await d.telegram_update(
            await d.telegram_channel(agent["id"]), text_update("hi", sender=Sender(id=42))
        )
        turn = d.jobs.run_pending()
    elif channel == "WhatsApp":
        personal = await d.agent(audience="personal")
        linked = await d.client.post(
            "/api/v1/users/me/channel",
            json={"channel": "whatsapp", "phone_e164": PHONE, "agent_id": personal["id"]},
            headers=headers,
        )
        assert linked.status_code == 201, linked.text
        await d.whatsapp(f"LINK {linked.json()['code']}")
        await d.jobs.run_pending()
        await d.whatsapp("hi")
        turn = d.jobs.run_pending()
    elif channel == "voice":

        async def spoken() -> str:
            return "".join([p async for p in answer_turn(d.resources, agent["id"], "user:caller", "hi")])

        turn = spoken()
    else:
        created = await d.client.post(
            f"/api/v1/agents/{agent['id']}/tasks",
            json={"description": "Say hello to the team"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        turn = d.jobs.run_pending()
    assert await held_while_the_model_thinks(d, fake_llm, turn) == 0
    assert d.checked_out == 0


async def test_a_turn_stopped_after_phase_1_is_resumed_once_and_its_jobs_are_kept(
    deployment: Deployment, fake_llm: FakeLLMServer
) -> None:
    """A worker that dies while the model answers (here: its job cancelled, rolling back) leaves the stored
    message and the jobs phase 1 queued; the retry resumes the turn: one message stored, counted once, one
    answer, one reply, the quota notice queued once."""
    d = deployment
    agent = await d.agent()
    async with d.resources.database.sessionmaker() as session:  # five messages a month: the 4th reaches 80%
        await session.execute(update(Org).where(Org.id == d.owner.org.id).values(plan="monthly5"))
        await session.commit()
    channel = await d.telegram_channel(agent["id"])
    sender = Sender(id=77)
    for n in range(3):
        fake_llm.script(ScriptedReply(content=f"answer {n}"))
        await d.telegram_update(channel, text_update(f"question {n}", sender=sender))
        await d.jobs.run_pending()
    await d.telegram_update(channel, text_update("question 3", sender=sender))
    [job] = d.jobs.deferred
    fake_llm.script(ScriptedReply(content="never stored", delay=5))
    asked = len(fake_llm.requests)
    crashed = asyncio.ensure_future(d.jobs.run_pending())
    for _ in range(300):
        if len(fake_llm.requests) > asked:
            break
        await asyncio.sleep(0.01)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    assert [name for name, _ in d.jobs.deferred] == [QUOTA_NOTICE_JOB]  # committed with phase 1
    d.jobs.deferred[:] = [job]  # the update's job, retried
    fake_llm.reset()
    fake_llm.script(ScriptedReply(content="answer 3"))
    await d.jobs.run_pending()
    assert d.telegram.sent_texts(sender.id) == ["answer 0", "answer 1", "answer 2", "answer 3"]
    assert "question 3" in str(fake_llm.requests[-1].body)  # the resumed turn asked about the stored message
    async with d.resources.database.sessionmaker() as session:
        said = await session.scalars(
            select(Message.content).where(Message.role == MessageRole.USER).order_by(Message.created_at)
        )
        assert list(said) == ["question 0", "question 1", "question 2", "question 3"]
        answers = await session.scalars(select(Message.content).where(Message.role == MessageRole.ASSISTANT))
        assert sorted(answers) == ["answer 0", "answer 1", "answer 2", "answer 3"]
        counted = await session.scalar(
            select(func.sum(UsageDaily.messages)).where(UsageDaily.org_id == d.owner.org.id)
        )
        assert counted == 4
    assert d.checked_out == 0


async def test_one_chats_turns_run_in_order_while_other_chats_run_alongside(
    deployment: Deployment, fake_llm: FakeLLMServer
) -> None:
    """Telegram asks bots to answer one chat's updates in order: its turns share a queue lock (the second
    waits for the first), while another chat's turn is not held up behind them."""
    d = deployment
    agent = await d.agent()
    channel = await d.telegram_channel(agent["id"])
    for update_id, (chat, text) in enumerate([(1, "first"), (1, "second"), (2, "other")], start=900):
        await d.telegram_update(channel, text_update(text, sender=Sender(id=chat), update_id=update_id))
    first, other = (chat_lock(channel[0], text_update("x", sender=Sender(id=chat))) for chat in (1, 2))
    assert d.jobs.locks == [first, first, other] and first != other
    assert [kwargs["update_id"] for _, kwargs in d.jobs.deferred] == [900, 901, 902]
