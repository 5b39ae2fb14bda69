"""The OpenAI-compatible API, driven by the official ``openai`` SDK, unmodified, against Hutch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.models import Conversation, Memory, Message
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Acme")


async def make_key(client: httpx.AsyncClient, owner: Account, **fields: object) -> str:
    response = await client.post("/api/v1/api-keys", json={"label": "sdk", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def make_agent(client: httpx.AsyncClient, owner: Account, **fields: object) -> dict[str, str]:
    response = await client.post(
        "/api/v1/agents", json={"name": "Support Bot", **fields}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


@pytest.fixture
async def sdk(app: FastAPI, client: httpx.AsyncClient, owner: Account) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK, talking HTTP to Hutch in-process, authenticated with an API key of scope chat."""
    key = await make_key(client, owner, scopes=["read", "chat"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(
            api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0
        )


async def test_create_answers_as_the_agent_with_usage(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner, system_prompt="You are Acme's support agent.")
    fake_anthropic.script(AnthropicReply(content="We open at nine."))
    reply = await sdk.chat.completions.create(
        model=agent["slug"],
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "When do you open?"},
        ],
    )
    assert reply.object == "chat.completion" and reply.model == agent["slug"]
    assert reply.choices[0].message.content == "We open at nine."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    sent = fake_anthropic.requests[-1].body
    system = json.dumps(sent["system"])
    assert "Acme's support agent" in system and "Answer in one sentence." in system
    assert sent["messages"][-1]["content"][0]["text"] == "When do you open?"


async def test_streaming_ends_with_done_and_usage(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="one two three four"))
    stream = await sdk.chat.completions.create(
        model=agent["id"],
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish: str | None = None
    usage = None
    async for event in stream:
        assert event.object == "chat.completion.chunk"
        if event.choices:
            pieces.append(event.choices[0].delta.content or "")
            finish = event.choices[0].finish_reason or finish
        if event.usage is not None:
            usage = event.usage
    assert "".join(pieces) == "one two three four" and len([p for p in pieces if p]) > 1
    assert finish == "stop" and usage is not None and usage.total_tokens > 0


async def test_raw_stream_ends_with_done(
    client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner)
    key = await make_key(client, owner, scopes=["chat"])
    response = await client.post(
        "/v1/chat/completions",
        json={"model": agent["slug"], "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")


async def test_list_models_shows_the_callers_agents_only(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    session: AsyncSession,
    settings: Settings,
) -> None:
    mine = await make_agent(client, owner)
    stranger = await create_account(session, settings)
    await make_agent(client, stranger, name="Not Yours")
    models = await sdk.models.list()
    assert [m.id for m in models.data] == [mine["slug"]]


async def test_unknown_model_is_404_in_openai_format(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    stranger = await create_account(session, settings)
    theirs = await make_agent(client, stranger)
    for model in ("no-such-agent", theirs["slug"], theirs["id"]):
        with pytest.raises(openai.NotFoundError) as raised:
            await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        assert raised.value.code == "model_not_found"
        assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]


async def test_auth_errors_follow_openai_format(
    app: FastAPI, client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner)
    read_only = await make_key(client, owner, scopes=["read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        bad = openai.AsyncOpenAI(
            api_key="hk_wrong", base_url="http://testserver/v1", http_client=http, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(
                model=agent["slug"], messages=[{"role": "user", "content": "x"}]
            )
        reader = openai.AsyncOpenAI(
            api_key=read_only, base_url="http://testserver/v1", http_client=http, max_retries=0
        )
        with pytest.raises(openai.PermissionDeniedError):
            await reader.chat.completions.create(
                model=agent["slug"], messages=[{"role": "user", "content": "x"}]
            )
        good = await make_key(client, owner, scopes=["chat"])
        sdk = openai.AsyncOpenAI(
            api_key=good, base_url="http://testserver/v1", http_client=http, max_retries=0
        )
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(model=agent["slug"], messages=[])
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(
                model=agent["slug"], messages=[{"role": "assistant", "content": "last word is mine"}]
            )


async def test_callers_tools_come_back_unchanged_and_results_continue(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner)
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_1")])
    )
    first = await sdk.chat.completions.create(
        model=agent["slug"],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[weather],  # type: ignore[list-item]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.id == "toolu_1" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    offered = [t["name"] for t in fake_anthropic.requests[-1].body["tools"]]
    assert "get_weather" in offered and "remember" in offered  # the agent's own tools are there too

    fake_anthropic.script(AnthropicReply(content="Sunny, 21 degrees."))
    second = await sdk.chat.completions.create(
        model=agent["slug"],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21C"},
        ],
        tools=[weather],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content == "Sunny, 21 degrees."
    last = fake_anthropic.requests[-1].body["messages"][-1]
    assert last["content"][0]["type"] == "tool_result" and last["content"][0]["tool_use_id"] == "toolu_1"


async def test_with_user_the_exchange_is_stored_and_memories_apply(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("remember", {"fact": "Lives in Lyon."})]),
        AnthropicReply(content="Noted!"),
    )
    await sdk.chat.completions.create(
        model=agent["slug"], messages=[{"role": "user", "content": "I live in Lyon."}], user="customer-42"
    )
    memories = (await session.scalars(select(Memory).where(Memory.agent_id == agent["id"]))).all()
    assert [(m.end_user, m.content) for m in memories] == [("api:customer-42", "Lives in Lyon.")]
    stored = (
        await session.scalars(select(Message).join(Conversation).where(Conversation.agent_id == agent["id"]))
    ).all()
    assert sorted((m.role.value, m.content) for m in stored) == [
        ("assistant", "Noted!"),
        ("user", "I live in Lyon."),
    ]

    fake_anthropic.script(AnthropicReply(content="In Lyon."))
    await sdk.chat.completions.create(
        model=agent["slug"], messages=[{"role": "user", "content": "Where do I live?"}], user="customer-42"
    )
    assert "Lives in Lyon." in json.dumps(fake_anthropic.requests[-1].body["system"])
    fake_anthropic.script(AnthropicReply(content="I don't know."))
    await sdk.chat.completions.create(
        model=agent["slug"], messages=[{"role": "user", "content": "Where do I live?"}], user="someone-else"
    )
    assert "Lives in Lyon." not in json.dumps(fake_anthropic.requests[-1].body["system"])


async def test_stored_exchanges_are_not_compacted_since_callers_send_the_history(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    jobs: RecordingJobQueue,
    resources: Resources,
    session: AsyncSession,
) -> None:
    resources.settings = resources.settings.model_copy(update={"history_messages": 2})
    agent = await make_agent(client, owner)
    for n in range(1, 7):
        await sdk.chat.completions.create(
            model=agent["slug"], messages=[{"role": "user", "content": f"message {n}"}], user="customer-7"
        )
    stored = await session.scalar(
        select(Conversation.message_count).where(Conversation.agent_id == agent["id"])
    )
    assert stored == 12  # well past the window that compacts a channel's conversation
    assert [name for name, _ in jobs.deferred if name == "conversations.compact"] == []


async def test_without_user_nothing_is_stored(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await make_agent(client, owner)
    await sdk.chat.completions.create(model=agent["slug"], messages=[{"role": "user", "content": "hello"}])
    assert (
        await session.scalars(select(Conversation).where(Conversation.agent_id == agent["id"]))
    ).all() == []


async def test_a_failing_model_answers_502_and_the_message_is_kept(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner, model="openai/gpt-4o")
    fake_llm.script(ScriptedReply(status=500, error="upstream exploded"))
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk.chat.completions.create(
            model=agent["slug"], messages=[{"role": "user", "content": "are you there?"}], user="u1"
        )
    assert raised.value.status_code == 502 and raised.value.code == "upstream_error"
    stored = (
        await session.scalars(select(Message).join(Conversation).where(Conversation.agent_id == agent["id"]))
    ).all()
    assert [m.content for m in stored if m.role.value == "user"] == ["are you there?"]
    [failed] = [m for m in stored if m.role.value == "assistant"]
    assert failed.status.value == "failed" and "upstream exploded" in (failed.error or "")


async def test_restricted_key_reaches_only_its_agents(
    app: FastAPI, client: httpx.AsyncClient, owner: Account
) -> None:
    allowed = await make_agent(client, owner, name="Allowed")
    other = await make_agent(client, owner, name="Other")
    key = await make_key(client, owner, scopes=["read", "chat"], agent_ids=[allowed["id"]])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        sdk = openai.AsyncOpenAI(
            api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0
        )
        assert [m.id for m in (await sdk.models.list()).data] == [allowed["slug"]]
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(
                model=other["slug"], messages=[{"role": "user", "content": "x"}]
            )
        reply = await sdk.chat.completions.create(
            model=allowed["slug"], messages=[{"role": "user", "content": "x"}]
        )
        assert reply.choices[0].message.content
