"""Anthropic's Messages API over agents, driven by the official ``anthropic`` SDK, unmodified."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.conversations.models import Conversation, Message
from hutch.settings import Settings
from tests.channels.test_openai_api import make_agent, make_key, owner
from tests.channels.test_responses_api import PIXEL
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse
from tests.fakes.llm import FakeLLMServer, ScriptedReply

__all__ = ["owner"]

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """Anthropic's SDK speaks through httpx2: Hutch in-process, over its ASGI transport."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app)) as http:
        yield http


def sdk_for(http: httpx2.AsyncClient, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=key, base_url="http://testserver", http_client=http, max_retries=0
    )


@pytest.fixture
async def claude(
    http: httpx.AsyncClient, client: httpx.AsyncClient, owner: Account
) -> anthropic.AsyncAnthropic:
    """The official SDK with a Hutch key of scope chat (sent as ``x-api-key``, with ``anthropic-version``)."""
    return sdk_for(http, await make_key(client, owner, scopes=["read", "chat"]))


async def test_create_answers_as_the_agent_with_usage(
    claude: anthropic.AsyncAnthropic,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner, system_prompt="You are Acme's support agent.")
    fake_anthropic.script(AnthropicReply(content="We open at nine."))
    message = await claude.messages.create(
        model=agent["slug"],
        max_tokens=256,
        system="Answer in one sentence.",
        messages=[{"role": "user", "content": "When do you open?"}],
        metadata={"user_id": "customer-42"},
    )
    assert message.type == "message" and message.role == "assistant" and message.model == agent["slug"]
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "We open at nine."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    system = json.dumps(fake_anthropic.requests[-1].body["system"])
    assert "Acme's support agent" in system and "Answer in one sentence." in system
    stored = await session.scalars(
        select(Message).join(Conversation).where(Conversation.agent_id == agent["id"]).order_by(Message.seq)
    )
    assert [(m.role.value, m.content) for m in stored] == [
        ("user", "When do you open?"),
        ("assistant", "We open at nine."),
    ]


async def test_streaming_sends_anthropics_events(
    claude: anthropic.AsyncAnthropic,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="one two three four"))
    kinds: list[str] = []
    async with claude.messages.stream(
        model=agent["slug"], max_tokens=64, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        async for item in stream:
            kinds.append(item.type)
        final = await stream.get_final_message()
        text = "".join(b.text for b in final.content if b.type == "text")
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "message_delta" in kinds
    assert kinds.count("content_block_delta") > 1
    assert text == "one two three four" and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


async def test_tool_use_comes_back_and_tool_results_continue(
    claude: anthropic.AsyncAnthropic,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_1")])
    )
    question = {"role": "user", "content": "Weather in Paris?"}
    first = await claude.messages.create(
        model=agent["slug"],
        max_tokens=64,
        messages=[question],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.id == "toolu_1" and use.name == "get_weather" and use.input == {"city": "Paris"}
    offered = [t["name"] for t in fake_anthropic.requests[-1].body["tools"]]
    assert "get_weather" in offered and "remember" in offered

    fake_anthropic.script(AnthropicReply(content="Sunny, 21 degrees."))
    second = await claude.messages.create(
        model=agent["slug"],
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            question,  # type: ignore[list-item]
            {"role": "assistant", "content": [use.model_dump()]},  # type: ignore[list-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    )
    assert second.content[0].text == "Sunny, 21 degrees."  # type: ignore[union-attr]
    last = fake_anthropic.requests[-1].body["messages"][-1]
    assert last["content"][0]["type"] == "tool_result" and last["content"][0]["tool_use_id"] == "toolu_1"

    fake_anthropic.script(AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Rome"}, id="toolu_2")]))
    async with claude.messages.stream(
        model=agent["slug"],
        max_tokens=64,
        messages=[question],
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        streamed = await stream.get_final_message()
    assert streamed.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "input", None)) for b in streamed.content] == [("tool_use", {"city": "Rome"})]


async def test_images_reach_a_model_that_sees(
    claude: anthropic.AsyncAnthropic,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
    ]
    agent = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="A pixel."))
    await claude.messages.create(
        model=agent["slug"],
        max_tokens=64,
        messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
    )
    blocks = fake_anthropic.requests[-1].body["messages"][-1]["content"]
    assert [b["type"] for b in blocks] == ["text", "image"]
    blind = await make_agent(client, owner, name="Blind", model="demo/echo")
    with pytest.raises(anthropic.BadRequestError) as raised:
        await claude.messages.create(
            model=blind["slug"],
            max_tokens=64,
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_errors_come_in_anthropics_shape(
    http: httpx2.AsyncClient,
    claude: anthropic.AsyncAnthropic,
    client: httpx.AsyncClient,
    owner: Account,
    session: AsyncSession,
    settings: Settings,
) -> None:
    agent = await make_agent(client, owner)
    hi = [{"role": "user", "content": "hi"}]
    stranger = await create_account(session, settings)
    theirs = await make_agent(client, stranger)

    async def refused(
        sdk: anthropic.AsyncAnthropic, error: type[anthropic.APIStatusError], kind: str, **kw: object
    ) -> None:
        with pytest.raises(error) as raised:
            await sdk.messages.create(**{"model": agent["slug"], "max_tokens": 16, "messages": hi, **kw})  # type: ignore[arg-type]
        assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == kind  # type: ignore[index]

    await refused(sdk_for(http, "hk_wrong"), anthropic.AuthenticationError, "authentication_error")
    reader = sdk_for(http, await make_key(client, owner, scopes=["read"]))
    await refused(reader, anthropic.PermissionDeniedError, "permission_error")
    await refused(claude, anthropic.NotFoundError, "not_found_error", model="no-such-agent")
    await refused(claude, anthropic.NotFoundError, "not_found_error", model=theirs["id"])
    await refused(claude, anthropic.BadRequestError, "invalid_request_error", messages=[])
    await refused(
        claude,
        anthropic.BadRequestError,
        "invalid_request_error",
        messages=[{"role": "assistant", "content": "x"}],
    )
    await refused(
        claude,
        anthropic.BadRequestError,
        "invalid_request_error",
        tools=[{"type": "bash_20250124", "name": "bash"}],
    )
    bearer = anthropic.AsyncAnthropic(
        auth_token=await make_key(client, owner, scopes=["chat"]),
        base_url="http://testserver",
        http_client=http,
        max_retries=0,
    )
    assert (await bearer.messages.create(model=agent["slug"], max_tokens=16, messages=hi)).content  # type: ignore[arg-type]
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="metered"))
    await session.commit()
    with pytest.raises(anthropic.APIStatusError) as raised:
        await claude.messages.create(model=agent["slug"], max_tokens=16, messages=hi)  # type: ignore[arg-type]
    assert raised.value.status_code == 402 and raised.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


async def test_a_failing_model_is_a_502_api_error(
    claude: anthropic.AsyncAnthropic, client: httpx.AsyncClient, owner: Account, fake_llm: FakeLLMServer
) -> None:
    agent = await make_agent(client, owner, model="openai/gpt-4o")
    fake_llm.script(ScriptedReply(status=500, error="upstream exploded"))
    with pytest.raises(anthropic.InternalServerError) as raised:
        await claude.messages.create(
            model=agent["slug"], max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )
    assert raised.value.status_code == 502 and raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]

    fake_llm.script(ScriptedReply(status=500, error="upstream exploded"))
    with pytest.raises(anthropic.APIStatusError):
        async with claude.messages.stream(
            model=agent["slug"], max_tokens=16, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            await stream.get_final_message()


async def test_a_key_over_its_rate_is_a_429_rate_limit_error(
    http: httpx2.AsyncClient, client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner)
    slow = sdk_for(http, await make_key(client, owner, scopes=["chat"], rate_limit_per_minute=1))
    hi = [{"role": "user", "content": "hi"}]
    await slow.messages.create(model=agent["slug"], max_tokens=16, messages=hi)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as raised:
        await slow.messages.create(model=agent["slug"], max_tokens=16, messages=hi)  # type: ignore[arg-type]
    assert raised.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(raised.value.response.headers["retry-after"]) >= 1


async def test_models_list_in_anthropics_format(
    claude: anthropic.AsyncAnthropic, client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner)
    models = await claude.models.list()
    assert [(m.id, m.display_name, m.type) for m in models.data] == [(agent["slug"], "Support Bot", "model")]
