"""An agent on Telegram with its own bot, against the fake Bot API through python-telegram-bot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.channels.inbound import NOT_SENT_AGAIN, UNREADABLE_MESSAGE
from hutch.channels.models import Channel, ExternalEvent
from hutch.conversations.models import EndUser, Message
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources, statements_on
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.telegram import (
    FakeTelegramServer,
    Sender,
    callback_query_update,
    edited_text_update,
    sticker_update,
    text_update,
    webhook_headers,
)

TOKEN = "123456789:AAE_test_token_for_the_shop_bot_xyz"


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

    async def post(self, update: dict[str, Any], secret: str | None = None) -> int:
        response = await self.client.post(
            f"/webhooks/telegram/{self.channel_id}",
            json=update,
            headers=webhook_headers(self.secret if secret is None else secret),
        )
        return response.status_code

    async def run_jobs(self) -> list[Any]:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return await self.resources.jobs.run_pending()

    async def say(self, text: str, sender: Sender = Sender()) -> list[str]:
        before = len(self.telegram.sent_texts(sender.id))
        assert await self.post(text_update(text, sender=sender)) == 200
        await self.run_jobs()
        return self.telegram.sent_texts(sender.id)[before:]


@pytest.fixture
async def on_telegram(
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[OnTelegram]:
    telegram_server.reset()
    telegram_server.add_bot(TOKEN, "shop_bot")
    configured = settings.model_copy(update={"telegram_api_base": telegram_server.base_url})
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Shop", "model": "demo/echo"}, headers=owner.headers
        )
        connected = await client.post(
            f"/api/v1/agents/{agent.json()['id']}/channels/telegram",
            json={"bot_token": TOKEN},
            headers=owner.headers,
        )
        assert connected.status_code == 201, connected.text
        webhook = telegram_server.webhook(TOKEN)
        assert webhook is not None and webhook.secret_token
        yield OnTelegram(
            client,
            telegram_server,
            resources,
            session,
            owner,
            agent.json()["id"],
            connected.json()["id"],
            webhook.secret_token,
        )


async def test_connecting_checks_the_token_and_sets_a_secret_webhook(on_telegram: OnTelegram) -> None:
    t = on_telegram
    listed = (await t.client.get(f"/api/v1/agents/{t.agent_id}/channels", headers=t.owner.headers)).json()
    [channel] = listed["items"]
    assert channel["bot_username"] == "shop_bot" and channel["link"] == "https://t.me/shop_bot"
    assert TOKEN not in str(listed)
    webhook = t.telegram.webhook(TOKEN)
    assert webhook is not None
    assert webhook.url == f"https://hutch.example/webhooks/telegram/{t.channel_id}"
    assert set(webhook.allowed_updates or []) >= {"message", "edited_message"}
    stored = await t.session.get(Channel, t.channel_id)
    assert (
        stored is not None
        and TOKEN not in stored.token_encrypted
        and t.secret not in stored.webhook_secret_hash
    )

    url = f"/api/v1/agents/{t.agent_id}/channels/telegram"
    again = await t.client.post(url, json={"bot_token": TOKEN}, headers=t.owner.headers)
    assert again.status_code == 409 and "@shop_bot" in again.json()["detail"]
    unknown = await t.client.post(
        url, json={"bot_token": "999:AAE_unknown_token_value_xxxx"}, headers=t.owner.headers
    )
    assert unknown.status_code == 400 and "BotFather" in unknown.json()["detail"]
    malformed = await t.client.post(url, json={"bot_token": "not a token"}, headers=t.owner.headers)
    assert malformed.status_code == 422

    removed = await t.client.delete(
        f"/api/v1/agents/{t.agent_id}/channels/{t.channel_id}", headers=t.owner.headers
    )
    assert removed.status_code == 204
    assert t.telegram.webhook(TOKEN) is None
    assert await t.post(text_update("hi")) == 403


async def test_wrong_or_missing_secret_is_403_and_stores_nothing(on_telegram: OnTelegram) -> None:
    t = on_telegram
    assert await t.post(text_update("hi"), secret="wrong") == 403
    response = await t.client.post(f"/webhooks/telegram/{t.channel_id}", json=text_update("hi"))
    assert response.status_code == 403
    other = await t.client.post(
        "/webhooks/telegram/chn_unknown", json=text_update("hi"), headers=webhook_headers(t.secret)
    )
    assert other.status_code == 403
    assert await t.session.scalar(select(func.count()).select_from(ExternalEvent)) == 0


async def test_a_message_is_stored_answered_once_and_replays_are_ignored(on_telegram: OnTelegram) -> None:
    t = on_telegram
    update_body = text_update("Hello there", update_id=777)
    assert await t.post(update_body) == 200
    assert await t.post(update_body) == 200  # Telegram resends when unsure: no second answer
    assert await t.run_jobs() == ["answered"]
    assert t.telegram.sent_texts(Sender().id) == ["[Demo — no AI] You said: Hello there"]
    assert "typing" in t.telegram.chat_actions(Sender().id)
    # "Typing…" goes out beside the model's call, yet never after the answer, even an instant one.
    shown = [call.method for call in t.telegram.calls if call.method in ("sendChatAction", "sendMessage")]
    assert shown == ["sendChatAction", "sendMessage"]
    stored = (await t.session.scalars(select(Message).where(Message.org_id == t.owner.org.id))).all()
    assert [m.role.value for m in stored] == ["user", "assistant"]
    event = await t.session.get(ExternalEvent, (f"telegram:{t.channel_id}", "777"))
    assert event is not None and event.handled_at is not None and event.outcome == "answered"


async def test_a_turn_takes_few_statements_and_a_first_message_opens_its_conversation_in_one(
    on_telegram: OnTelegram,
) -> None:
    """A burst is made of first messages, and each statement costs CPU in the worker and in PostgreSQL: a
    chat's first message opens its conversation, is stored and remembers who sent it in one statement, as
    later messages are stored in one."""
    t = on_telegram
    sender = Sender(id=5_550_077, first_name="Grace", last_name="Hopper", username="grace_h")
    counted = []
    for text in ("hello", "again"):
        assert await t.post(text_update(text, sender=sender)) == 200
        with statements_on(t.resources.database.engine) as statements:
            await t.run_jobs()
        counted.append(statements)
    assert t.telegram.sent_texts(sender.id) == [
        "[Demo — no AI] You said: hello",
        "[Demo — no AI] You said: again",
    ]
    first, later = ([s for s in run if "SAVEPOINT" not in s] for run in counted)  # (the test's transaction)
    conversation_writes = [
        s for s in first if "INSERT INTO conversations" in s or "UPDATE conversations" in s
    ]
    assert len(conversation_writes) == 2  # the message stored, then the answer: one statement each
    assert not [s for s in first if s.lstrip().startswith("INSERT INTO end_users")]  # rides on the first
    # The update with its bot, the bot's agent, org and provider keys; the message; its reservation; the
    # answer, which marks the update as being sent; the handled mark. Later messages read the conversation's
    # history too (its summary comes with the message's statement).
    assert len(first) == 5 and len(later) == 6, (first, later)
    remembered = await t.session.scalar(
        select(EndUser.display_name).where(EndUser.external_id == f"telegram:{sender.id}")
    )
    assert remembered == "Grace Hopper"


async def test_commands_and_messages_that_are_not_text(on_telegram: OnTelegram) -> None:
    t = on_telegram
    assert "I am Shop" in (await t.say("/start"))[0]
    assert "/reset" in (await t.say("/help"))[0]
    assert "prepaid credits" in (await t.say("/balance"))[0]
    await t.say("Remember this conversation")
    assert "new conversation" in (await t.say("/reset"))[0]
    question = t.telegram.sent_messages(Sender().id)[-1]
    assert question.reply_markup is not None
    [[start_over, keep_going]] = question.reply_markup["inline_keyboard"]
    assert (start_over["callback_data"], keep_going["callback_data"]) == ("reset:yes", "reset:no")
    conversations = f"/api/v1/agents/{t.agent_id}/conversations"
    before = (await t.client.get(conversations, headers=t.owner.headers)).json()["items"]
    assert [c["closed_at"] for c in before] == [None]
    press = callback_query_update(
        "reset:yes", message_id=question.message_id, bot_id=123456789, bot_username="shop_bot"
    )
    assert await t.post(press) == 200
    assert await t.run_jobs() == ["conversation reset"]
    assert question.text == "Done: we start a new conversation." and question.edits
    assert "answerCallbackQuery" in [c.method for c in t.telegram.recorded(token=TOKEN)]
    after = (await t.client.get(conversations, headers=t.owner.headers)).json()["items"]
    assert [c["closed_at"] is not None for c in after] == [True]
    for update_body in (sticker_update(), edited_text_update("fixed typo", message_id=5)):
        assert await t.post(update_body) == 200
    await t.run_jobs()
    assert t.telegram.sent_texts(Sender().id)[-2:] == [UNREADABLE_MESSAGE] * 2


async def test_long_answers_are_split_and_rate_limits_waited_out(
    on_telegram: OnTelegram, fake_llm: FakeLLMServer
) -> None:
    t = on_telegram
    await t.client.patch(
        f"/api/v1/agents/{t.agent_id}", json={"model": "openai/gpt-4o-mini"}, headers=t.owner.headers
    )
    paragraph = "word " * 199 + "end.\n\n"
    fake_llm.script(ScriptedReply(content=paragraph * 6))  # about 6,000 characters
    t.telegram.rate_limit("sendMessage", retry_after=1)
    sent = await t.say("Tell me everything")
    assert len(sent) == 2 and all(len(piece) <= 4096 for piece in sent)
    assert "".join(sent).count("end.") == 6


async def test_a_blocked_bot_and_a_reached_quota_end_politely(on_telegram: OnTelegram) -> None:
    t = on_telegram
    t.telegram.block(Sender().id, TOKEN)
    assert await t.post(text_update("hi", update_id=901)) == 200
    assert await t.run_jobs() == ["not delivered: the user blocked the bot"]
    t.telegram.unblock(Sender().id, TOKEN)

    await t.session.execute(update(Org).where(Org.id == t.owner.org.id).values(plan="daily"))
    await t.session.commit()
    await t.say("one")  # the blocked one above was answered (and counted) too
    [notice] = await t.say("three")
    assert "come back tomorrow" in notice
    stored_users = await t.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.org_id == t.owner.org.id, Message.role == "user")
    )
    assert stored_users == 2  # the refused message was neither stored nor sent to the model


async def test_an_event_stored_without_its_job_is_answered_later(on_telegram: OnTelegram) -> None:
    t = on_telegram
    source = f"telegram:{t.channel_id}"
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    for update_id, text in ((501, "lost in a crash"), (502, "queued fine")):
        t.session.add(
            ExternalEvent(
                source=source,
                external_id=str(update_id),
                payload=text_update(text, update_id=update_id),
                received_at=long_ago,
            )
        )
    await t.session.flush()
    await t.session.execute(
        sql_text(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
            "VALUES ('channels', 'channels.telegram_update', CAST(:args AS jsonb), 'todo')"
        ),
        {"args": json.dumps({"channel_id": t.channel_id, "update_id": 502})},
    )
    await t.session.commit()
    assert isinstance(t.resources.jobs, RecordingJobQueue)
    swept = await t.resources.jobs.execute(
        "channels.requeue_lost_events", {"timestamp": 0}, job_id=0, attempt=0, resources=t.resources
    )
    assert swept == 1
    assert await t.run_jobs() == ["answered"]
    assert t.telegram.sent_texts(Sender().id) == ["[Demo — no AI] You said: lost in a crash"]


async def test_messages_in_and_out_are_counted_per_day(on_telegram: OnTelegram) -> None:
    t = on_telegram
    await t.say("hello")
    await t.say("/help")
    usage = await t.client.get(f"/api/v1/agents/{t.agent_id}/channels/usage", headers=t.owner.headers)
    assert usage.status_code == 200
    [today] = usage.json()["items"]
    assert (today["channel"], today["inbound"], today["outbound"]) == ("telegram", 2, 2)
    assert today["day"] == datetime.now(UTC).date().isoformat()
    bad = await t.client.get(f"/api/v1/agents/{t.agent_id}/channels/usage?days=0", headers=t.owner.headers)
    assert bad.status_code == 422


async def test_a_revoked_token_marks_the_channel_for_its_owner(on_telegram: OnTelegram) -> None:
    t = on_telegram
    t.telegram.remove_bot(TOKEN)  # revoked in @BotFather: every call now answers 401
    assert await t.post(text_update("anyone there?", update_id=333)) == 200
    outcome, *telling_owners = await t.run_jobs()  # then the owners' email and chats
    assert outcome.startswith("not delivered") and "token" in outcome and telling_owners
    listed = await t.client.get(f"/api/v1/agents/{t.agent_id}/channels", headers=t.owner.headers)
    [channel] = listed.json()["items"]
    assert channel["status"] == "error" and "BotFather" in channel["last_error"]
    stored = await t.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.org_id == t.owner.org.id, Message.role == "user")
    )
    assert stored == 1  # what the person wrote is kept, with the answer, for the owner to read


async def test_an_answer_interrupted_mid_send_is_not_sent_twice(on_telegram: OnTelegram) -> None:
    t = on_telegram
    assert await t.post(text_update("once only", update_id=4242)) == 200
    event = await t.session.get(ExternalEvent, (f"telegram:{t.channel_id}", "4242"))
    assert event is not None
    # As a worker leaves it when it stops after storing the answer (whose statement marks the event as being
    # sent), or between sending and recording: the reply may have arrived.
    event.reply, event.outcome = "[Demo — no AI] You said: once only", "sending"
    await t.session.commit()
    assert await t.run_jobs() == [NOT_SENT_AGAIN]
    assert t.telegram.sent_texts(Sender().id) == []
    await t.session.refresh(event)
    assert event.handled_at is not None and event.outcome == NOT_SENT_AGAIN


async def test_a_send_that_fails_clears_the_mark_and_the_retry_sends_the_stored_answer_once(
    on_telegram: OnTelegram,
) -> None:
    """The statement that stores the answer marks the event as being sent; a send that fails with an error
    clears the mark, so the retried job sends the same answer, without asking the model again."""
    t = on_telegram
    assert await t.post(text_update("ask once", update_id=4343)) == 200
    assert isinstance(t.resources.jobs, RecordingJobQueue)
    queued = list(t.resources.jobs.deferred)
    t.telegram.fail("sendMessage", 400, "Bad Request: message is too long")
    with pytest.raises(Exception, match="too long"):
        await t.run_jobs()
    event = await t.session.get(ExternalEvent, (f"telegram:{t.channel_id}", "4343"))
    assert event is not None
    assert event.reply == "[Demo — no AI] You said: ask once" and event.outcome is None
    assert event.handled_at is None

    t.resources.jobs.deferred.extend(queued)  # the queue's retry
    assert await t.run_jobs() == ["answered"]
    assert t.telegram.sent_texts(Sender().id) == ["[Demo — no AI] You said: ask once"]
    answers = await t.session.scalar(
        select(func.count()).select_from(Message).where(Message.role == "assistant")
    )
    assert answers == 1


async def test_one_person_past_the_agents_limit_is_refused_while_others_get_answers(
    on_telegram: OnTelegram,
) -> None:
    t = on_telegram
    changed = await t.client.patch(
        f"/api/v1/agents/{t.agent_id}", json={"end_user_messages_per_minute": 2}, headers=t.owner.headers
    )
    assert changed.status_code == 200 and changed.json()["end_user_messages_per_minute"] == 2
    eager, other = Sender(id=7_001, first_name="Eager"), Sender(id=7_002, first_name="Calm")
    for n in range(2):
        [answer] = await t.say(f"question {n}", eager)
        assert "wait a minute" not in answer
    [refused] = await t.say("one more", eager)
    assert refused == (
        "You are sending messages faster than I can answer. Please wait a minute and try again."
    )
    [answer] = await t.say("hello", other)  # someone else is still answered
    assert "wait a minute" not in answer
    stored = await t.session.scalar(
        select(func.count()).select_from(Message).where(Message.content == "one more")
    )
    assert stored == 0  # refused before anything was stored or counted

    listed = (await t.client.get("/api/v1/conversations", headers=t.owner.headers)).json()["items"]
    limited = {item["end_user"]["display_name"]: item["end_user"]["limited_note"] for item in listed}
    assert limited["Eager Lovelace"] == "went past 2 messages a minute per person (Shop)"
    assert limited["Calm Lovelace"] is None


async def _block_a_spammer(t: OnTelegram, plan: str) -> None:
    """The first person says hello and is blocked; the org moves to ``plan``; the spammer sends three more."""
    await t.say("hello")
    [conversation] = (await t.client.get("/api/v1/conversations", headers=t.owner.headers)).json()["items"]
    blocked = await t.client.post(
        f"/api/v1/end-users/{conversation['end_user']['id']}/block", headers=t.owner.headers
    )
    assert blocked.status_code == 200
    await t.session.execute(update(Org).where(Org.id == t.owner.org.id).values(plan=plan))
    await t.session.commit()
    for n in range(3):
        assert await t.say(f"spam {n}") == []  # no answer


async def test_a_blocked_person_costs_nothing(on_telegram: OnTelegram) -> None:
    t = on_telegram
    await _block_a_spammer(t, "daily")
    # The plan answers 2 a day: "hello" was one, the blocked spam none, so someone else gets the second.
    [answer] = await t.say("hi", Sender(id=7_003, first_name="Other"))
    assert "come back tomorrow" not in answer
    [answer] = await t.say("again", Sender(id=7_003, first_name="Other"))
    assert "come back tomorrow" in answer


async def test_a_blocked_person_takes_no_place_in_the_orgs_minute(on_telegram: OnTelegram) -> None:
    t = on_telegram
    await _block_a_spammer(t, "tiny")
    # The plan answers 3 a minute: the blocked spam took none of them, so someone else gets all three.
    other = Sender(id=7_004, first_name="Other")
    for n in range(3):
        [answer] = await t.say(f"question {n}", other)
        assert "a lot of messages" not in answer
