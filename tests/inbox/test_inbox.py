"""The inbox API: every conversation on every channel, filters, search, takeover, replies, blocked people."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.agents.models import Agent
from hutch.conversations.inbox import NEEDS_HUMAN_JOB
from hutch.conversations.models import Conversation, Message, MessageRole
from hutch.conversations.service import ConversationService
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.conversations.test_chat import new_agent, say, tool_call
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Acme")


@pytest.fixture
async def colleague(session: AsyncSession, settings: Settings, owner: Account) -> Account:
    return await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)


async def seed(
    session: AsyncSession, agent_id: str, channel: str, end_user: str, *lines: tuple[MessageRole, str]
) -> Conversation:
    """A conversation on ``channel`` with ``lines``, stored as the channel's turns store them."""
    agent = await session.get(Agent, agent_id)
    assert agent is not None
    service = ConversationService(session)
    conversation = await service.open(agent, channel, end_user)
    for role, content in lines:
        await service.add(conversation, role, content, input_tokens=7, output_tokens=3, cost_micro_usd=42)
    await session.commit()
    return conversation


async def inbox(client: AsyncClient, who: Account, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/conversations", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


U, A = MessageRole.USER, MessageRole.ASSISTANT


async def test_every_channel_newest_first_with_filters_and_pages(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    shop = await new_agent(client, owner, name="Shop")
    desk = await new_agent(client, owner, name="Desk")
    tg = await seed(
        session, shop["id"], "telegram", "telegram:5550001", (U, "where is my parcel"), (A, "On its way")
    )
    wa = await seed(session, shop["id"], "whatsapp", "whatsapp:+15551234567", (U, "refund please"))
    web = await seed(session, desk["id"], "webchat", "webchat:chn_x:visitor123456", (U, "opening hours?"))
    await say(client, owner, desk, "hello from the api")

    listed = await inbox(client, owner)
    assert listed["total"] == 4
    ids = [item["id"] for item in listed["items"]]
    assert ids[1:] == [web.id, wa.id, tg.id]  # the API chat is the newest
    first = listed["items"][0]
    assert first["channel"] == "api" and first["status"] == "open" and first["message_count"] == 2
    assert set(first) >= {
        "id",
        "agent_id",
        "channel",
        "end_user",
        "status",
        "last_message_at",
        "message_count",
    }
    names = {item["channel"]: item["end_user"]["display_name"] for item in listed["items"]}
    assert names["whatsapp"] == "WhatsApp +1555•••4567"  # the number partly masked
    assert "1234567" not in str(listed)

    assert [i["id"] for i in (await inbox(client, owner, agent_id=shop["id"]))["items"]] == [wa.id, tg.id]
    assert [i["id"] for i in (await inbox(client, owner, channel="webchat"))["items"]] == [web.id]
    page = await inbox(client, owner, skip=1, limit=2)
    assert page["total"] == 4 and [i["id"] for i in page["items"]] == [web.id, wa.id]
    assert (await inbox(client, owner, skip=10))["items"] == []

    await client.post(f"/api/v1/conversations/{tg.id}/close", headers=owner.headers)
    assert [i["id"] for i in (await inbox(client, owner, status="closed"))["items"]] == [tg.id]
    assert tg.id not in [i["id"] for i in (await inbox(client, owner, status="open"))["items"]]
    future = "2999-01-01T00:00:00Z"
    assert (await inbox(client, owner, since=future))["total"] == 0
    assert (await inbox(client, owner, until=future))["total"] == 4


async def test_search_finds_words_in_messages_through_the_full_text_index(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    parcel = await seed(
        session, agent["id"], "telegram", "telegram:1", (U, "Where is my parcel?"), (A, "Shipped")
    )
    await seed(session, agent["id"], "telegram", "telegram:2", (U, "I want a refund"), (A, "Sure"))
    found = await inbox(client, owner, q="parcel")
    assert [i["id"] for i in found["items"]] == [parcel.id] and found["total"] == 1
    assert (await inbox(client, owner, q="shipped"))["total"] == 1  # answers are searched too
    assert (await inbox(client, owner, q='"want a refund"'))["total"] == 1
    assert (await inbox(client, owner, q="nothing-like-this"))["total"] == 0
    beyond = await inbox(client, owner, q="parcel", skip=5)  # past the last page: still the whole count
    assert beyond == {"items": [], "total": 1}
    two = await inbox(client, owner, q="shipped or sure", limit=1)  # both conversations
    assert len(two["items"]) == 1 and two["total"] == 2

    # The search is an index lookup on the stored words, not a scan of every message, and a phrase is
    # checked against those words, never against the text parsed again.
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    for q in ("parcel", '"want a refund"'):
        plan = await session.execute(
            text(
                "EXPLAIN SELECT conversation_id FROM messages WHERE "
                "search @@ websearch_to_tsquery('simple'::regconfig, :q)"
            ),
            {"q": q},
        )
        shown = "\n".join(row[0] for row in plan.all())
        assert "ix_messages_search" in shown and "to_tsvector" not in shown, shown


async def test_the_search_words_are_kept_by_the_database_on_every_insert(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    await say(client, owner, agent, "Zebra crossing ahead")  # the chat path's insert
    assert (await inbox(client, owner, q='"zebra crossing"'))["total"] == 1
    words = await session.scalar(select(Message.search).where(Message.content == "Zebra crossing ahead"))
    assert words == "'ahead':3 'crossing':2 'zebra':1"


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"skip": -1}, {"status": "sleeping"}, {"q": ""}, {"since": "yesterday"}],
)
async def test_bad_filters_are_a_clear_422(
    client: AsyncClient, owner: Account, params: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/conversations", params=params, headers=owner.headers)
    assert response.status_code == 422 and response.json()["detail"]


async def test_a_conversation_shows_its_messages_with_tokens_cost_and_the_telegram_name(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    agent_row = await session.get(Agent, agent["id"])
    assert agent_row is not None
    from hutch.conversations.end_users import EndUserProfile

    service = ConversationService(session)
    conversation = await service.open(
        agent_row, "telegram", "telegram:77", profile=EndUserProfile("Ada Lovelace", "ada_l")
    )
    await service.add(conversation, U, "hi")
    await service.add(conversation, A, "hello", input_tokens=12, output_tokens=4, cost_micro_usd=99)
    await session.commit()
    shown = (await client.get(f"/api/v1/conversations/{conversation.id}", headers=owner.headers)).json()
    assert shown["end_user"]["display_name"] == "Ada Lovelace" and shown["end_user"]["username"] == "ada_l"
    assert [(m["role"], m["content"]) for m in shown["messages"]] == [("user", "hi"), ("assistant", "hello")]
    answer = shown["messages"][1]
    assert (answer["input_tokens"], answer["output_tokens"], answer["cost_micro_usd"]) == (12, 4, 99)

    as_text = await client.get(
        f"/api/v1/conversations/{conversation.id}/export", params={"format": "text"}, headers=owner.headers
    )
    assert (
        as_text.status_code == 200 and "Ada Lovelace: hi" in as_text.text and "Agent: hello" in as_text.text
    )
    assert "attachment" in as_text.headers["content-disposition"]
    as_json = await client.get(f"/api/v1/conversations/{conversation.id}/export", headers=owner.headers)
    assert as_json.json()["messages"][1]["content"] == "hello"


async def test_another_orgs_conversation_and_end_user_are_not_found(
    client: AsyncClient, owner: Account, session: AsyncSession, settings: Settings
) -> None:
    neighbour = await create_account(session, settings, org_name="Neighbour")
    agent = await new_agent(client, neighbour)
    theirs = await seed(session, agent["id"], "telegram", "telegram:9", (U, "secret question"))
    assert (await inbox(client, owner))["total"] == 0
    assert (await inbox(client, owner, q="secret"))["total"] == 0
    for method, path in [
        ("GET", ""),
        ("GET", "/export"),
        ("GET", "/events"),
        ("POST", "/takeover"),
        ("POST", "/release"),
        ("POST", "/close"),
        ("POST", "/reopen"),
    ]:
        response = await client.request(
            method, f"/api/v1/conversations/{theirs.id}{path}", headers=owner.headers
        )
        assert response.status_code == 404, (path, response.text)
    reply = await client.post(
        f"/api/v1/conversations/{theirs.id}/reply", json={"content": "hi"}, headers=owner.headers
    )
    assert reply.status_code == 404
    end_user_id = (await inbox(client, neighbour))["items"][0]["end_user"]["id"]
    assert (
        await client.post(f"/api/v1/end-users/{end_user_id}/block", headers=owner.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/end-users/{end_user_id}/block", headers=owner.headers)
    ).status_code == 404


async def test_takeover_reply_release_close_and_reopen(
    client: AsyncClient, owner: Account, colleague: Account, session: AsyncSession, jobs: RecordingJobQueue
) -> None:
    agent = await new_agent(client, owner)
    conversation = await seed(session, agent["id"], "api", "key:someone", (U, "hello?"))
    base = f"/api/v1/conversations/{conversation.id}"

    refused = await client.post(f"{base}/reply", json={"content": "hi"}, headers=owner.headers)
    assert refused.status_code == 409  # not held yet

    taken = await client.post(f"{base}/takeover", headers=owner.headers)
    assert taken.status_code == 200
    assert taken.json()["status"] == "taken_over" and taken.json()["taken_over_by"] == owner.user.id
    assert (await client.post(f"{base}/takeover", headers=owner.headers)).status_code == 200  # again: fine
    assert (await client.post(f"{base}/takeover", headers=colleague.headers)).status_code == 409
    assert (
        await client.post(f"{base}/reply", json={"content": "x"}, headers=colleague.headers)
    ).status_code == 409
    assert (await client.post(f"{base}/release", headers=colleague.headers)).status_code == 409
    assert (await inbox(client, owner, status="taken_over"))["total"] == 1

    for bad in ({"content": ""}, {"content": "   "}, {"content": "x" * 4001}, {}):
        response = await client.post(f"{base}/reply", json=bad, headers=owner.headers)
        assert response.status_code == 422, bad
    replied = await client.post(f"{base}/reply", json={"content": "A person here."}, headers=owner.headers)
    assert replied.status_code == 201
    assert replied.json()["role"] == "human" and replied.json()["author_id"] == owner.user.id
    shown = (await client.get(base, headers=owner.headers)).json()
    assert [m["role"] for m in shown["messages"]] == ["user", "human"] and shown["message_count"] == 2
    assert ("channels.deliver_human_reply", {"message_id": replied.json()["id"]}) in jobs.deferred
    assert await jobs.run_pending()  # an API conversation only stores it

    released = await client.post(f"{base}/release", headers=owner.headers)
    assert released.status_code == 200 and released.json()["status"] == "open"
    assert released.json()["taken_over_by"] is None
    assert (await client.post(f"{base}/takeover", headers=colleague.headers)).status_code == 200
    assert (await client.post(f"{base}/close", headers=owner.headers)).status_code == 409  # the colleague's
    closed = await client.post(f"{base}/close", headers=colleague.headers)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (await client.post(f"{base}/takeover", headers=owner.headers)).status_code == 409  # closed
    reopened = await client.post(f"{base}/reopen", headers=owner.headers)
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"


async def test_api_keys_cannot_take_over(client: AsyncClient, owner: Account, session: AsyncSession) -> None:
    agent = await new_agent(client, owner)
    conversation = await seed(session, agent["id"], "api", "key:x", (U, "hi"))
    key = (await client.post("/api/v1/api-keys", json={"label": "k"}, headers=owner.headers)).json()["key"]
    response = await client.post(
        f"/api/v1/conversations/{conversation.id}/takeover", headers={"X-API-Key": key}
    )
    assert response.status_code == 403
    row = await session.get(Conversation, conversation.id, populate_existing=True)
    assert row is not None and row.taken_over_by is None


async def test_reopening_after_the_end_user_started_again_is_a_409(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    old = await seed(session, agent["id"], "telegram", "telegram:3", (U, "first"))
    assert (
        await client.post(f"/api/v1/conversations/{old.id}/close", headers=owner.headers)
    ).status_code == 200
    await seed(session, agent["id"], "telegram", "telegram:3", (U, "second"))
    response = await client.post(f"/api/v1/conversations/{old.id}/reopen", headers=owner.headers)
    assert response.status_code == 409 and "new conversation" in response.json()["detail"]


async def test_the_agent_does_not_answer_while_taken_over_and_resumes_with_the_human_in_its_history(
    client: AsyncClient, owner: Account, session: AsyncSession, fake_llm: FakeLLMServer
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o")
    fake_llm.script(ScriptedReply(content="Hello!"))
    first = await say(client, owner, agent, "hi")
    base = f"/api/v1/conversations/{first['conversation_id']}"
    assert (await client.post(f"{base}/takeover", headers=owner.headers)).status_code == 200
    asked = len(fake_llm.requests)

    held = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": "are you there?"}, headers=owner.headers
    )
    assert held.status_code == 409 and "person" in held.json()["detail"]
    streamed = await client.post(
        f"/api/v1/agents/{agent['id']}/chat",
        json={"message": "hello?"},
        headers={**owner.headers, "accept": "text/event-stream"},
    )
    assert streamed.status_code == 409  # refused before a stream starts
    assert len(fake_llm.requests) == asked  # no model call
    shown = (await client.get(base, headers=owner.headers)).json()
    assert [m["content"] for m in shown["messages"]][-1] == "hello?"  # stored and shown
    assert [m["role"] for m in shown["messages"]].count("assistant") == 1  # nothing answered or metered
    await client.post(f"{base}/reply", json={"content": "Yes, Grace from support."}, headers=owner.headers)
    await client.post(f"{base}/release", headers=owner.headers)

    fake_llm.script(ScriptedReply(content="Back to me."))
    resumed = await say(client, owner, agent, "thanks")
    assert resumed["message"]["content"] == "Back to me."
    sent = fake_llm.requests[-1].body["messages"]
    assert {"role": "assistant", "content": "Yes, Grace from support."} in [
        {"role": m["role"], "content": m.get("content")} for m in sent
    ]


async def test_the_openai_api_does_not_answer_a_person_a_member_holds(
    client: AsyncClient, owner: Account, session: AsyncSession, fake_llm: FakeLLMServer
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o")
    made = await client.post("/api/v1/api-keys", json={"label": "shop"}, headers=owner.headers)
    key = {"authorization": f"Bearer {made.json()['key']}"}
    fake_llm.script(ScriptedReply(content="Hello!"))
    body = {"model": agent["id"], "user": "visitor-1", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/v1/chat/completions", json=body, headers=key)).status_code == 200
    listed = (await client.get("/api/v1/conversations", headers=owner.headers)).json()
    base = f"/api/v1/conversations/{listed['items'][0]['id']}"
    assert (await client.post(f"{base}/takeover", headers=owner.headers)).status_code == 200
    asked = len(fake_llm.requests)
    counted = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    for stream in (False, True):  # neither way reaches the model
        again = {
            **body,
            "stream": stream,
            "messages": [{"role": "user", "content": f"still there {stream}?"}],
        }
        held = await client.post("/v1/chat/completions", json=again, headers=key)
        assert held.status_code == 409, held.text
    assert len(fake_llm.requests) == asked
    shown = (await client.get(base, headers=owner.headers)).json()["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant", "user", "user"]  # kept for the member
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    assert (usage["messages_today"], usage["messages_this_month"]) == (
        counted["messages_today"],
        counted["messages_this_month"],
    )  # not counted against the plan: nobody answered them


async def test_the_agent_can_hand_a_conversation_to_a_person(
    client: AsyncClient,
    owner: Account,
    session: AsyncSession,
    fake_llm: FakeLLMServer,
    jobs: RecordingJobQueue,
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o", tools=["handoff_to_human"])
    fake_llm.script(
        ScriptedReply(
            tool_calls=[tool_call("handoff_to_human", {"reason": "wants a refund over the limit"})]
        ),
        ScriptedReply(content="A person will answer you here."),
    )
    answer = await say(client, owner, agent, "I want to talk to a human")
    assert answer["message"]["content"] == "A person will answer you here."
    item = (await inbox(client, owner, status="needs_human"))["items"]
    assert [i["id"] for i in item] == [answer["conversation_id"]]
    notices = [kwargs for name, kwargs in jobs.deferred if name == NEEDS_HUMAN_JOB]
    assert notices == [
        {"conversation_id": answer["conversation_id"], "reason": "wants a refund over the limit"}
    ]
    emailed = await jobs.run_pending()
    assert emailed[0] == 1  # the owner, by email (and their linked chats through the chat notice job)


async def test_a_blocked_end_user_gets_no_answer_and_costs_nothing(
    client: AsyncClient, owner: Account, session: AsyncSession, fake_llm: FakeLLMServer
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o")
    fake_llm.script(ScriptedReply(content="Hello!"))
    first = await say(client, owner, agent, "hi")
    end_user = (
        await client.get(f"/api/v1/conversations/{first['conversation_id']}", headers=owner.headers)
    ).json()["end_user"]
    blocked = await client.post(f"/api/v1/end-users/{end_user['id']}/block", headers=owner.headers)
    assert blocked.status_code == 200 and blocked.json()["blocked_at"] is not None
    assert (await inbox(client, owner))["items"][0]["end_user"]["blocked"] is True
    asked, stored = len(fake_llm.requests), await _messages(session)

    refused = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": "again"}, headers=owner.headers
    )
    assert refused.status_code == 403
    assert len(fake_llm.requests) == asked and await _messages(session) == stored  # nothing stored or asked

    unblocked = await client.delete(f"/api/v1/end-users/{end_user['id']}/block", headers=owner.headers)
    assert unblocked.status_code == 204
    fake_llm.script(ScriptedReply(content="Welcome back."))
    assert (await say(client, owner, agent, "again"))["message"]["content"] == "Welcome back."
    assert (await client.post("/api/v1/end-users/eu_nobody/block", headers=owner.headers)).status_code == 404


async def _messages(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Message)) or 0)
