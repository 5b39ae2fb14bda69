"""Chatting with an agent through the API: replies, history, tools, memory, fallback, failures, streaming."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.apikeys.models import ApiKeySpend
from hutch.billing.models import UsageDaily
from hutch.conversations.models import Conversation, Memory, MemoryKind, Message
from hutch.db.engine import UnitOfWork
from hutch.engine.gateway import LLMGateway
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.turns.flow import TurnFlow
from tests.conftest import LiveDeployment, RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Acme")


async def new_agent(client: AsyncClient, owner: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/agents", json={"name": "Ada", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def say(
    client: AsyncClient, owner: Account, agent: dict[str, Any], text: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": text, **extra}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def live_agent_with_key(
    live: LiveDeployment, settings: Settings
) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    """An owner, their agent on GPT-4o (the fake OpenAI server) and a chat API key, on a live deployment.
    The test's own session gives its connection back, so the pool holds only what requests hold."""
    owner = await create_account(live.session, settings)
    await live.session.commit()
    agent = await new_agent(live.client, owner, model="openai/gpt-4o")
    created = await live.client.post(
        "/api/v1/api-keys", json={"label": "k", "scopes": ["chat"]}, headers=owner.headers
    )
    return owner, agent, created.json()


def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


async def test_a_reply_is_stored_with_model_tokens_and_cost_and_the_thread_continues(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="Hello Grace!"))
    first = await say(client, owner, agent, "Hi, I'm Grace")
    assert first["message"]["content"] == "Hello Grace!" and first["message"]["status"] == "ok"
    assert first["message"]["model"] == "anthropic/claude-sonnet-4-5"
    usage = first["usage"]
    expected_cost = -(-(usage["input_tokens"] * 3 + usage["output_tokens"] * 15) // 1)  # $3 / $15 per Mtok
    assert usage["input_tokens"] > 0 and usage["cost_micro_usd"] == expected_cost

    fake_anthropic.script(AnthropicReply(content="You are Grace."))
    second = await say(client, owner, agent, "Who am I?")
    assert second["conversation_id"] == first["conversation_id"]
    sent = fake_anthropic.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert (
        sent[0]["content"][0]["text"] == "Hi, I'm Grace" and sent[1]["content"][0]["text"] == "Hello Grace!"
    )

    listing = await client.get(
        f"/api/v1/agents/{agent['id']}/conversations/{first['conversation_id']}/messages",
        headers=owner.headers,
    )
    items = listing.json()["items"]
    assert [(m["seq"], m["role"], m["content"]) for m in items] == [
        (1, "user", "Hi, I'm Grace"),
        (2, "assistant", "Hello Grace!"),
        (3, "user", "Who am I?"),
        (4, "assistant", "You are Grace."),
    ]
    assert items[1]["input_tokens"] == usage["input_tokens"] and items[1]["cost_micro_usd"] == expected_cost
    conversations = (
        await client.get(f"/api/v1/agents/{agent['id']}/conversations", headers=owner.headers)
    ).json()
    assert conversations["total"] == 1
    assert (
        conversations["items"][0]["title"] == "Hi, I'm Grace"
        and conversations["items"][0]["message_count"] == 4
    )


async def test_the_remember_tool_keeps_facts_for_this_user_only(
    client: AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    agent = await new_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("remember", {"fact": "Prefers tea over coffee."})]),
        AnthropicReply(content="Got it."),
    )
    answer = await say(client, owner, agent, "I prefer tea.")
    [stored] = (await session.scalars(select(Message).where(Message.id == answer["message"]["id"]))).all()
    [call] = stored.tool_calls
    assert call == {
        "name": "remember",
        "args": {"fact": "Prefers tea over coffee."},
        "result": "Saved.",
        "ms": call["ms"],  # how long it took; built-in tools are not metered
    }
    assert isinstance(call["ms"], int) and call["ms"] >= 0
    memories = (await client.get(f"/api/v1/agents/{agent['id']}/memories", headers=owner.headers)).json()[
        "items"
    ]
    assert [(m["kind"], m["content"], m["end_user"]) for m in memories] == [
        ("fact", "Prefers tea over coffee.", f"user:{owner.user.id}")
    ]

    await say(client, owner, agent, "What do I drink?")
    assert "Prefers tea over coffee." in json.dumps(fake_anthropic.requests[-1].body["system"])
    colleague = await create_account(session, settings, org=owner.org)
    await say(client, colleague, agent, "What do I drink?")
    assert "Prefers tea" not in json.dumps(fake_anthropic.requests[-1].body["system"])

    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("forget", {"about": "tea"})]), AnthropicReply(content="Forgotten.")
    )
    await say(client, owner, agent, "Forget my drink.")
    assert (await client.get(f"/api/v1/agents/{agent['id']}/memories", headers=owner.headers)).json()[
        "items"
    ] == []


async def test_a_waiting_senders_message_commits_without_waiting_for_the_disk(
    client: AsyncClient, owner: Account, session: AsyncSession, resources: Resources
) -> None:
    """The statement storing the message says so for its transaction, whether it joins the open conversation
    or opens one; webhook messages (nobody waiting) keep a durable commit."""
    agent = await session.get(Agent, (await new_agent(client, owner))["id"])
    assert agent is not None
    settings_seen: list[str] = []

    def seen(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "day_reserved" in statement:  # phase 1's last statement, in its transaction before the commit
            extra = connection.connection.cursor()
            extra.execute("SHOW synchronous_commit")
            settings_seen.append(extra.fetchone()[0])

    bind = session.get_bind()
    event.listen(bind, "after_cursor_execute", seen)
    try:
        flow = TurnFlow(UnitOfWork(session, resources.jobs), resources)
        await flow.begin(agent, "api", "known", "hello")
        for end_user in ("known", "new"):
            await flow.begin(agent, "api", end_user, "again", caller_waits=True)
    finally:
        event.remove(bind, "after_cursor_execute", seen)
    assert settings_seen == ["on", "off", "off"]


async def test_the_prompt_holds_the_newest_facts_oldest_first(
    client: AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
    resources: Resources,
) -> None:
    """The first message of a conversation reads the facts on its own; later ones carry the read in the
    statement that stores them. Both show the newest ``memories_in_prompt`` facts, oldest first."""
    resources.settings = resources.settings.model_copy(update={"memories_in_prompt": 3})
    agent = await new_agent(client, owner)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    session.add_all(
        Memory(
            id=f"mem_{n}",
            org_id=owner.org.id,
            agent_id=agent["id"],
            end_user=f"user:{owner.user.id}",
            kind=MemoryKind.FACT,
            content=f"fact {n}",
            created_at=start + timedelta(days=n),
        )
        for n in (2, 4, 1, 3)
    )
    await session.flush()
    for turn in ("first", "second"):
        await say(client, owner, agent, turn)
        system = json.dumps(fake_anthropic.requests[-1].body["system"])
        assert "fact 1" not in system
        assert system.index("fact 2") < system.index("fact 3") < system.index("fact 4")


async def test_a_turn_asks_the_model_once_unless_it_calls_a_tool(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o", tools=["current_time"])
    before = len(fake_llm.requests)
    fake_llm.script(ScriptedReply(content="Hello!"))
    answer = await say(client, owner, agent, "hi")
    assert answer["message"]["content"] == "Hello!" and len(fake_llm.requests) == before + 1

    fake_llm.script(
        ScriptedReply(
            tool_calls=[tool_call("current_time", {"timezone": "UTC"})], prompt_tokens=10, completion_tokens=5
        ),
        ScriptedReply(content="It is noon.", prompt_tokens=20, completion_tokens=3),
    )
    answer = await say(client, owner, agent, "time?")
    assert answer["message"]["content"] == "It is noon." and len(fake_llm.requests) == before + 3
    sent = fake_llm.requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-2]["tool_calls"][0]["function"]["name"] == "current_time"
    stored = await session.get(Message, answer["message"]["id"])
    assert stored is not None and (stored.input_tokens, stored.output_tokens) == (30, 8)  # both requests
    assert [call["name"] for call in stored.tool_calls] == ["current_time"]

    fake_llm.script(ScriptedReply(content=""), ScriptedReply(content="Here it is."))
    answer = await say(client, owner, agent, "again?")
    assert answer["message"]["content"] == "Here it is." and len(fake_llm.requests) == before + 5


async def test_memories_can_be_deleted_by_the_customer(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await new_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("remember", {"fact": "Birthday is 3 May."})]),
        AnthropicReply(content="ok"),
    )
    await say(client, owner, agent, "My birthday is 3 May")
    [memory] = (await client.get(f"/api/v1/agents/{agent['id']}/memories", headers=owner.headers)).json()[
        "items"
    ]
    url = f"/api/v1/agents/{agent['id']}/memories/{memory['id']}"
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.delete(url, headers=owner.headers)).status_code == 404


async def test_streaming_sends_deltas_then_the_stored_answer(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="Streaming works nicely"))
    response = await client.post(
        f"/api/v1/agents/{agent['id']}/chat",
        json={"message": "stream please"},
        headers={**owner.headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n", 1) for block in response.text.strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    payloads = [json.loads(e[1].removeprefix("data: ")) for e in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"} and len(names) > 2
    assert "".join(p["content"] for p in payloads[:-1]) == "Streaming works nicely"
    done = payloads[-1]
    assert done["message"]["content"] == "Streaming works nicely" and done["usage"]["output_tokens"] > 0
    stored = await session.get(Message, done["message"]["id"])
    assert stored is not None and stored.content == "Streaming works nicely"


async def test_a_failing_model_falls_back_then_apologises_and_keeps_everything(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
    resources: Resources,
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o", fallback_model="anthropic/claude-haiku-4-5")
    fake_llm.script(ScriptedReply(status=503, error="overloaded"))
    fake_anthropic.script(AnthropicReply(content="Answered by the fallback."))
    saved = await say(client, owner, agent, "first question")
    assert saved["message"]["content"] == "Answered by the fallback."
    assert saved["message"]["model"] == "anthropic/claude-haiku-4-5"

    fake_llm.script(ScriptedReply(status=500, error="primary down"))
    fake_anthropic.script(AnthropicReply(status=529, error="fallback overloaded"))
    failed = await say(client, owner, agent, "second question")
    assert failed["message"]["status"] == "failed"
    assert failed["message"]["content"].startswith("Sorry, I can't answer right now")
    stored = await session.get(Message, failed["message"]["id"])
    assert (
        stored is not None and "primary down" in (stored.error or "") and "overloaded" in (stored.error or "")
    )
    asked = await session.scalar(
        select(func.count()).select_from(Message).where(Message.content == "second question")
    )
    assert asked == 1  # what the user sent is kept
    metrics = resources.metrics.render().decode()
    assert 'hutch_llm_requests_total{outcome="failed",provider="openai"} 1.0' in metrics
    assert 'hutch_llm_requests_total{outcome="fallback",provider="anthropic"} 1.0' in metrics

    # The failed apology is not replayed to the model as if it had said it.
    fake_llm.script(ScriptedReply(content="Back again."))
    await say(client, owner, agent, "third question")
    sent = [m["content"] for m in fake_llm.requests[-1].body["messages"] if m["role"] == "assistant"]
    assert not any("Sorry" in str(c) for c in sent)


async def test_paused_agents_and_models_without_keys_refuse_before_storing_anything(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    paused = await new_agent(client, owner, status="paused")
    response = await client.post(
        f"/api/v1/agents/{paused['id']}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert response.status_code == 409 and "paused" in response.json()["detail"]
    keyless = await new_agent(client, owner, model="google/gemini-2.0-flash")
    response = await client.post(
        f"/api/v1/agents/{keyless['id']}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert response.status_code == 409 and "POST /api/v1/provider-keys" in response.json()["detail"]
    assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
    empty = await client.post(
        f"/api/v1/agents/{paused['id']}/chat", json={"message": ""}, headers=owner.headers
    )
    assert empty.status_code == 422


async def test_reset_starts_a_new_conversation(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await new_agent(client, owner)
    first = await say(client, owner, agent, "one")
    reset = await client.post(
        f"/api/v1/agents/{agent['id']}/conversations/{first['conversation_id']}/reset", headers=owner.headers
    )
    assert reset.status_code == 200 and reset.json()["closed_at"] is not None
    second = await say(client, owner, agent, "two")
    assert second["conversation_id"] != first["conversation_id"]
    assert [m["role"] for m in fake_anthropic.requests[-1].body["messages"]] == ["user"]
    # An older conversation can still be continued by naming it.
    again = await say(client, owner, agent, "three", conversation_id=first["conversation_id"])
    assert again["conversation_id"] == first["conversation_id"]


async def test_history_is_capped_and_older_turns_are_compacted_into_a_summary(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    session: AsyncSession,
    jobs: RecordingJobQueue,
    resources: Resources,
) -> None:
    resources.settings = resources.settings.model_copy(update={"history_messages": 4})
    jobs.worker_resources = resources.worker_resources
    agent = await new_agent(client, owner, model="openai/gpt-4o")
    for n in range(1, 7):
        await say(client, owner, agent, f"message number {n}")
    sent = fake_llm.requests[-1].body["messages"]
    texts = [m["content"] for m in sent if m["role"] == "user"]
    assert texts == ["message number 4", "message number 5", "message number 6"]  # 4 earlier, then the new
    assert [name for name, _ in jobs.deferred] == ["conversations.compact"]

    fake_llm.script(ScriptedReply(content="Grace counted from one to four."))
    await jobs.run_pending()
    summary = (await session.scalars(select(Memory).where(Memory.kind == MemoryKind.SUMMARY))).one()
    assert summary.content == "Grace counted from one to four." and summary.covers_until_seq == 8
    summarised = json.dumps(fake_llm.requests[-1].body["messages"])
    assert "message number 1" in summarised and "message number 4" in summarised

    await say(client, owner, agent, "what did I say first?")
    system = fake_llm.requests[-1].body["messages"][0]
    assert system["role"] == "system" and "Grace counted from one to four." in system["content"]
    users = [m["content"] for m in fake_llm.requests[-1].body["messages"] if m["role"] == "user"]
    assert "message number 1" not in users and users[-1] == "what did I say first?"


async def test_strict_tool_definitions_follow_the_provider_setting(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, resources: Resources
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o", tools=["current_time"])
    await say(client, owner, agent, "time?")
    [tool] = fake_llm.requests[-1].body["tools"]
    assert tool["function"]["name"] == "current_time" and tool["function"].get("strict") is True

    moonshot = resources.settings.model_copy(
        update={"moonshot_api_key": resources.settings.openai_api_key, "moonshot_base_url": fake_llm.api_base}
    )
    resources.settings = moonshot
    resources.llm = LLMGateway(moonshot, resources.catalog)
    kimi = await new_agent(client, owner, name="Kimi", model="moonshot/kimi-k2.5", tools=["current_time"])
    await say(client, owner, kimi, "time?")
    [tool] = fake_llm.requests[-1].body["tools"]
    assert fake_llm.requests[-1].body["model"] == "kimi-k2.5"
    assert "strict" not in tool["function"] or tool["function"]["strict"] is False


async def test_current_time_and_web_fetch_refuse_bad_input_clearly(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer
) -> None:
    agent = await new_agent(client, owner, model="openai/gpt-4o", tools=["current_time", "web_fetch"])
    fake_llm.script(
        ScriptedReply(tool_calls=[tool_call("current_time", {"timezone": "Mars/Olympus"})]),
        ScriptedReply(tool_calls=[tool_call("current_time", {"timezone": "Europe/Paris"}, "call_2")]),
        ScriptedReply(
            tool_calls=[tool_call("web_fetch", {"url": f"{fake_llm.base_url}/v1/models"}, "call_3")]
        ),
        ScriptedReply(content="Done."),
    )
    answer = await say(client, owner, agent, "time in Paris, then read my server")
    assert answer["message"]["content"] == "Done."
    conversation = json.dumps(fake_llm.requests[-1].body["messages"])
    assert "Unknown time zone" in conversation  # the model was told, and tried again
    assert "CET" in conversation or "CEST" in conversation
    # Loopback addresses are refused unless the operator allows them (HUTCH_WEB_FETCH_ALLOW_PRIVATE).
    assert "gpt-4o-mini" not in conversation
    assert "refused: 127.0.0.1 is a loopback address" in conversation


async def test_web_fetch_reads_private_addresses_when_the_operator_allows_it(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, resources: Resources
) -> None:
    resources.settings = resources.settings.model_copy(update={"web_fetch_allow_private": True})
    agent = await new_agent(client, owner, model="openai/gpt-4o", tools=["web_fetch"])
    fake_llm.script(
        ScriptedReply(tool_calls=[tool_call("web_fetch", {"url": f"{fake_llm.base_url}/v1/models"})]),
        ScriptedReply(content="Read it."),
    )
    await say(client, owner, agent, "read my server")
    assert "gpt-4o-mini" in json.dumps(fake_llm.requests[-1].body["messages"])  # the page's content


async def test_the_demo_model_answers_without_any_provider_key(
    client: AsyncClient, owner: Account, resources: Resources
) -> None:
    keyless = resources.settings.model_copy(update={"openai_api_key": None, "anthropic_api_key": None})
    resources.settings = keyless
    resources.llm = LLMGateway(keyless, resources.catalog)
    agent = await new_agent(client, owner)
    assert agent["model"] == "demo/echo"
    models = (await client.get("/api/v1/models", headers=owner.headers)).json()["items"]
    [demo] = [m for m in models if m["id"] == "demo/echo"]
    assert demo["display_name"] == "Demo — no AI" and demo["is_default"] and demo["is_demo"]
    answer = await say(client, owner, agent, "hello demo")
    assert answer["message"]["content"] == "[Demo — no AI] You said: hello demo"
    assert answer["usage"]["cost_micro_usd"] == 0


async def test_many_turns_of_one_conversation_at_once_all_answer(
    live: LiveDeployment, settings: Settings
) -> None:
    """Turns of one conversation lock the conversation, then the usage counters, always in that order: in
    opposite orders, two of them waited on each other until PostgreSQL broke the deadlock with a 500."""
    owner = await create_account(live.session, settings)
    agent = (await live.client.post("/api/v1/agents", json={"name": "Busy"}, headers=owner.headers)).json()
    answers = await asyncio.gather(
        *(
            live.client.post(
                f"/api/v1/agents/{agent['id']}/chat", json={"message": f"n{i}"}, headers=owner.headers
            )
            for i in range(16)
        )
    )
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers if a.status_code != 200]
    conversations = {a.json()["conversation_id"] for a in answers}
    assert len(conversations) == 1
    stored = await live.session.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id == conversations.pop())
    )
    assert stored == 32


async def test_concurrent_answers_count_their_usage_and_key_spend_exactly(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    """A stored answer carries its usage counters and its key's spend in its own statement; answers to
    callers without an end user count theirs alone. All lock the usage row before the key's, so at once
    they neither deadlock nor lose a count."""
    owner, agent, created = await live_agent_with_key(live, settings)
    # GPT-4o: $2.50 per million input tokens, $10 per million output: 100,010 micro-dollars an answer.
    fake_llm.script(*(ScriptedReply(content="Counted.", prompt_tokens=40_000, completion_tokens=1),) * 16)

    def ask(n: int) -> Any:
        body: dict[str, Any] = {"model": agent["slug"], "messages": [{"role": "user", "content": f"n{n}"}]}
        if n % 2:
            body["user"] = f"u{n % 3}"  # some share a conversation
        return live.client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {created['key']}"}
        )

    answers = await asyncio.gather(*(ask(n) for n in range(16)))
    assert [a.status_code for a in answers] == [200] * 16, [a.text for a in answers if a.status_code != 200]
    day = (
        await live.session.execute(
            select(UsageDaily.messages, UsageDaily.input_tokens, UsageDaily.cost_micro_usd).where(
                UsageDaily.org_id == owner.org.id
            )
        )
    ).one()
    assert tuple(day) == (16, 16 * 40_000, 16 * 100_010)
    spent = await live.session.scalar(
        select(ApiKeySpend.spent_cents).where(ApiKeySpend.api_key_id == created["id"])
    )
    assert spent == 16 * 11  # 10.001 cents, rounded up per answer
    stored = await live.session.scalars(
        select(Message.role).join(Conversation).where(Conversation.agent_id == agent["id"])
    )
    assert sorted(r.value for r in stored) == ["assistant"] * 8 + ["user"] * 8


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("endpoint", ["agent chat", "OpenAI API"])
async def test_a_turn_waiting_on_its_model_holds_no_database_connection(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer, endpoint: str, stream: bool
) -> None:
    """Pooled connections are few; models take seconds. A turn reads what its prompt needs while it stores
    the message, and a stream answers with what the request read, so nothing is held while the model
    answers and the pool never caps concurrent chats."""
    owner, agent, created = await live_agent_with_key(live, settings)
    key = created["key"]
    if endpoint == "agent chat":
        ask = live.client.post(
            f"/api/v1/agents/{agent['id']}/chat",
            json={"message": "take your time"},
            headers=owner.headers | ({"Accept": "text/event-stream"} if stream else {}),
        )
    else:
        ask = live.client.post(
            "/v1/chat/completions",
            json={
                "model": agent["slug"],
                "messages": [{"role": "user", "content": "take your time"}],
                "user": "u",
                "stream": stream,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
    fake_llm.script(ScriptedReply(content="Done, slowly.", delay=1.0))
    pool = live.resources.database.engine.pool
    asking = asyncio.ensure_future(ask)
    for _ in range(250):  # until the model has the question (a turn that never gets there fails below)
        if fake_llm.requests or asking.done():
            break
        await asyncio.sleep(0.02)
    held = pool.checkedout()  # type: ignore[attr-defined]
    answer = await asking
    assert answer.status_code == 200, answer.text
    assert "slowly" in answer.text
    assert held == 0
