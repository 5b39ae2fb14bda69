"""OpenAI's Responses API over agents, driven by the official `openai` SDK and the Agents SDK, unmodified."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.channels.openai_api.models import StoredResponse
from hutch.conversations.models import Conversation, Message
from hutch.settings import Settings
from tests.channels.test_openai_api import make_agent, make_key, owner, sdk
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse
from tests.fakes.llm import FakeLLMServer, ScriptedReply

__all__ = ["owner", "sdk"]  # fixtures shared with the Chat Completions tests

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()


async def stored_messages(session: AsyncSession, agent_id: str) -> list[tuple[str, str]]:
    rows = await session.scalars(
        select(Message).join(Conversation).where(Conversation.agent_id == agent_id).order_by(Message.seq)
    )
    return [(m.role.value, m.content) for m in rows]


async def test_create_answers_as_the_agent_and_is_stored(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner, system_prompt="You are Acme's support agent.")
    fake_anthropic.script(AnthropicReply(content="We open at nine."))
    response = await sdk.responses.create(
        model=agent["slug"],
        input="When do you open?",
        instructions="Answer in one sentence.",
        metadata={"ticket": "T-1"},
    )
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "We open at nine." and response.model == agent["slug"]
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    sent = fake_anthropic.requests[-1].body
    system = json.dumps(sent["system"])
    assert "Acme's support agent" in system and "Answer in one sentence." in system
    assert await stored_messages(session, agent["id"]) == [
        ("user", "When do you open?"),
        ("assistant", "We open at nine."),
    ]

    again = await sdk.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == "We open at nine."
    assert again.metadata == {"ticket": "T-1"} and again.usage == response.usage


async def test_previous_response_id_continues_the_conversation(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="Hello Ada."), AnthropicReply(content="You are Ada."))
    first = await sdk.responses.create(model=agent["slug"], input="I am Ada.")
    second = await sdk.responses.create(model=agent["slug"], input="Who am I?", previous_response_id=first.id)
    assert second.output_text == "You are Ada." and second.previous_response_id == first.id
    messages = fake_anthropic.requests[-1].body["messages"]
    said = [(m["role"], json.dumps(m["content"])) for m in messages]
    assert "I am Ada." in said[0][1] and "Hello Ada." in said[1][1] and "Who am I?" in said[2][1]
    conversations = (
        await session.scalars(select(Conversation).where(Conversation.agent_id == agent["id"]))
    ).all()
    assert len(conversations) == 1 and conversations[0].message_count == 4


async def test_store_false_keeps_nothing_and_cannot_be_continued(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await make_agent(client, owner)
    response = await sdk.responses.create(model=agent["slug"], input="forget me", store=False)
    assert response.output_text and response.status == "completed"
    assert await stored_messages(session, agent["id"]) == []
    assert (await session.scalars(select(StoredResponse))).all() == []
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.responses.create(model=agent["slug"], input="again", previous_response_id=response.id)
    assert raised.value.body["param"] == "previous_response_id"  # type: ignore[index]


async def test_streaming_sends_the_responses_events_in_order(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="one two three four"))
    kinds: list[str] = []
    deltas: list[str] = []
    async with sdk.responses.stream(model=agent["slug"], input="count") as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(deltas) == "one two three four" and len(deltas) > 1
    assert final.output_text == "one two three four"
    assert final.usage is not None and final.usage.total_tokens > 0
    assert (await sdk.responses.retrieve(final.id)).output_text == "one two three four"


async def test_function_calls_come_back_and_outputs_continue(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await make_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_1")])
    )
    first = await sdk.responses.create(
        model=agent["slug"],
        input="Weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.call_id == "toolu_1" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    offered = [t["name"] for t in fake_anthropic.requests[-1].body["tools"]]
    assert "get_weather" in offered and "remember" in offered  # the agent's own tools run inside Hutch

    fake_anthropic.script(AnthropicReply(content="Sunny, 21 degrees."))
    second = await sdk.responses.create(
        model=agent["slug"],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "toolu_1", "output": "sunny, 21C"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "Sunny, 21 degrees."
    last = fake_anthropic.requests[-1].body["messages"][-1]
    assert last["content"][0]["type"] == "tool_result" and last["content"][0]["tool_use_id"] == "toolu_1"

    # Stateless, as the Agents SDK does by default: the whole history as items.
    fake_anthropic.script(AnthropicReply(content="Still sunny."))
    third = await sdk.responses.create(
        model=agent["slug"],
        store=False,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert third.output_text == "Still sunny."


async def test_delete_forgets_the_response(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner)
    response = await sdk.responses.create(model=agent["slug"], input="hello")
    await sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model=agent["slug"], input="x", previous_response_id=response.id)


async def test_another_orgs_response_is_not_found(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    session: AsyncSession,
    settings: Settings,
) -> None:
    stranger = await create_account(session, settings)
    theirs = await make_agent(client, stranger)
    their_key = await make_key(client, stranger, scopes=["chat"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        their_sdk = openai.AsyncOpenAI(
            api_key=their_key, base_url="http://testserver/v1", http_client=http, max_retries=0
        )
        secret = await their_sdk.responses.create(model=theirs["slug"], input="my secret plan")
    mine = await make_agent(client, owner)
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.responses.create(model=mine["slug"], input="x", previous_response_id=secret.id)
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "my secret plan" not in raised.value.response.text
    for attempt in (sdk.responses.retrieve, sdk.responses.delete):
        with pytest.raises(openai.NotFoundError):
            await attempt(secret.id)
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.responses.create(model=theirs["id"], input="x")
    assert unknown.value.code == "model_not_found"


async def test_auth_scope_and_plan_errors_follow_openai_format(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await make_agent(client, owner)
    read_only = await make_key(client, owner, scopes=["read"])
    chat = await make_key(client, owner, scopes=["chat"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:

        def sdk_with(key: str) -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(
                api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0
            )

        with pytest.raises(openai.AuthenticationError):
            await sdk_with("hk_wrong").responses.create(model=agent["slug"], input="x")
        with pytest.raises(openai.PermissionDeniedError):
            await sdk_with(read_only).responses.create(model=agent["slug"], input="x")
        await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="metered"))
        await session.commit()
        with pytest.raises(openai.APIStatusError) as raised:
            await sdk_with(chat).responses.create(model=agent["slug"], input="x")
        assert raised.value.status_code == 402
        assert raised.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    assert await stored_messages(session, agent["id"]) == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"type": "file_search_call", "id": "x"}]}, "input"),
        ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "1"}]}, "input"),
        ({"input": [{"role": "assistant", "content": "my last word"}]}, "input"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools"),
        ({"input": "x", "background": True}, "background"),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}
                ]
            },
            "input",
        ),
        ({"input": []}, "input"),
    ],
)
async def test_input_hutch_cannot_answer_is_a_400_naming_the_field(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fields: dict[str, object], param: str
) -> None:
    agent = await make_agent(client, owner)
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.responses.create(model=agent["slug"], **fields)  # type: ignore[call-overload]
    assert raised.value.body["param"] == param  # type: ignore[index]


async def test_images_reach_a_model_that_sees_and_are_refused_for_one_that_does_not(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    image = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}"},
            ],
        }
    ]
    seeing = await make_agent(client, owner)
    fake_anthropic.script(AnthropicReply(content="A pixel."))
    answer = await sdk.responses.create(model=seeing["slug"], input=image)  # type: ignore[arg-type]
    assert answer.output_text == "A pixel."
    blocks = fake_anthropic.requests[-1].body["messages"][-1]["content"]
    assert [b["type"] for b in blocks] == ["text", "image"] and blocks[1]["source"]["data"] == PIXEL

    blind = await make_agent(client, owner, name="Blind", model="demo/echo")
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.responses.create(model=blind["slug"], input=image)  # type: ignore[arg-type]
    assert "cannot see images" in raised.value.message


async def test_the_agents_sdk_runs_its_tool_through_the_agent(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)  # traces would go to OpenAI
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        asked.append(city)
        return f"sunny in {city}, 21C"

    agent = await make_agent(client, owner)
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_9")]),
        AnthropicReply(content="It is sunny in Paris."),
    )
    runner_agent = Agent(
        name="assistant",
        model=OpenAIResponsesModel(model=agent["slug"], openai_client=sdk),
        tools=[get_weather],
    )
    result = await Runner.run(runner_agent, "Weather in Paris?")
    assert result.final_output == "It is sunny in Paris." and asked == ["Paris"]
    last = fake_anthropic.requests[-1].body["messages"][-1]
    assert last["content"][0]["type"] == "tool_result" and "sunny in Paris" in json.dumps(last["content"])


async def test_a_conversation_a_member_holds_is_a_409_and_never_reaches_the_model(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner)
    first = await sdk.responses.create(model=agent["slug"], input="hello", user="customer-9")
    conversation = await session.scalar(select(Conversation.id).where(Conversation.agent_id == agent["id"]))
    held = await client.post(f"/api/v1/conversations/{conversation}/takeover", headers=owner.headers)
    assert held.status_code == 200, held.text
    asked = len(fake_anthropic.requests)
    for continued in ({"previous_response_id": first.id}, {"user": "customer-9"}):
        with pytest.raises(openai.ConflictError):
            await sdk.responses.create(model=agent["slug"], input="anyone there?", **continued)  # type: ignore[call-overload]
        with pytest.raises(openai.ConflictError):
            await sdk.responses.create(model=agent["slug"], input="anyone?", stream=True, **continued)  # type: ignore[call-overload]
    assert len(fake_anthropic.requests) == asked


async def test_a_failing_model_is_a_502_or_a_failed_event(
    sdk: openai.AsyncOpenAI,
    client: httpx.AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    session: AsyncSession,
) -> None:
    agent = await make_agent(client, owner, model="openai/gpt-4o")
    fake_llm.script(ScriptedReply(status=500, error="upstream exploded"))
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk.responses.create(model=agent["slug"], input="are you there?")
    assert raised.value.status_code == 502 and raised.value.code == "upstream_error"
    [kept] = (await session.scalars(select(StoredResponse))).all()
    assert kept.status.value == "failed" and kept.output_items == []

    fake_llm.script(ScriptedReply(status=500, error="upstream exploded"))
    kinds = []
    stream = await sdk.responses.create(model=agent["slug"], input="still there?", stream=True)
    async for event in stream:
        kinds.append(event.type)
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert event.response.error is not None and event.response.error.code == "server_error"  # type: ignore[union-attr]
