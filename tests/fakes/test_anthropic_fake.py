"""The fake Anthropic server speaks the Messages API well enough for the official SDK and pydantic-ai."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx
import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider

from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse

MODEL = "claude-sonnet-4-6"
USER: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropicServer]:
    server = FakeAnthropicServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropicServer) -> FakeAnthropicServer:
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture
async def sdk(fake_anthropic: FakeAnthropicServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url, max_retries=0
    )
    yield client
    await client.close()


# --- official SDK ---------------------------------------------------------------------------------


async def test_echoes_without_a_script_and_records_the_request(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    message = await sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    )
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Echo: hello there")]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    [request] = fake_anthropic.requests
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == "Bearer sk-ant-test"  # how the installed SDK sends the key
    assert request.headers["anthropic-version"]
    assert request.body["system"] == [{"type": "text", "text": "Be brief."}]


async def test_tool_use_then_tool_result_round_trip(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(
        AnthropicReply(
            content="Let me look.", tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_1")]
        ),
        AnthropicReply(content="Sunny in Paris."),
    )
    tools: list[anthropic.types.ToolParam] = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    question: anthropic.types.MessageParam = {"role": "user", "content": "Weather in Paris?"}
    first = await sdk.messages.create(
        model=MODEL, max_tokens=256, messages=[question], tools=tools, tool_choice={"type": "auto"}
    )
    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert text.type == "text" and text.text == "Let me look."
    assert call.type == "tool_use" and (call.id, call.name, call.input) == (
        "toolu_1",
        "get_weather",
        {"city": "Paris"},
    )

    second = await sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=tools,
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    )
    assert second.content[0].type == "text" and second.content[0].text == "Sunny in Paris."
    sent = fake_anthropic.requests[1].body["messages"]
    assert sent[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_1"


async def test_refuses_malformed_conversations_like_the_real_api(sdk: anthropic.AsyncAnthropic) -> None:
    orphan_result: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}
    ]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=orphan_result)
    unanswered_call: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_y", "name": "t", "input": {}}]},
        {"role": "user", "content": "well?"},
    ]
    with pytest.raises(anthropic.BadRequestError, match="without `tool_result`"):
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=unanswered_call)


async def test_streams_text_with_the_real_event_sequence(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(AnthropicReply(content="It is noon in Paris."))
    stream = await sdk.messages.create(model=MODEL, max_tokens=256, messages=USER, stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK swallows `ping`
    text = "".join(
        e.delta.text
        for e in events
        if isinstance(e, anthropic.types.RawContentBlockDeltaEvent)
        and isinstance(e.delta, anthropic.types.TextDelta)
    )
    assert text == "It is noon in Paris."
    delta = events[-2]
    assert isinstance(delta, anthropic.types.RawMessageDeltaEvent)
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 5


async def test_streams_a_tool_call_the_sdk_helper_reassembles(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("lookup", {"query": "opening hours", "limit": 3})])
    )
    async with sdk.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=USER,
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"
    [call] = message.content
    assert call.type == "tool_use" and call.id.startswith("toolu_")
    assert (call.name, call.input) == ("lookup", {"query": "opening hours", "limit": 3})


async def test_raw_stream_is_sse_with_event_and_data_lines(fake_anthropic: FakeAnthropicServer) -> None:
    # Read the bytes without the SDK: `ping` and the `event:` names must be on the wire.
    async with (
        anthropic.AsyncAnthropic(api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url) as client,
        client.messages.with_streaming_response.create(
            model=MODEL, max_tokens=50, messages=USER, stream=True
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    frames = [frame.split("\n") for frame in raw.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in frames]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    assert all(
        json.loads(lines[1].removeprefix("data: "))["type"] == name
        for name, lines in zip(names, frames, strict=True)
    )


async def test_max_tokens_and_stop_sequences_cut_the_answer(sdk: anthropic.AsyncAnthropic) -> None:
    long_prompt: list[anthropic.types.MessageParam] = [{"role": "user", "content": "word " * 40}]
    cut = await sdk.messages.create(model=MODEL, max_tokens=2, messages=long_prompt)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 2
    stopped = await sdk.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "one. two"}], stop_sequences=["."]
    )
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Echo: one"
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", ".")


async def test_count_tokens_and_list_models(sdk: anthropic.AsyncAnthropic) -> None:
    short = await sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    longer = await sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi " * 100}])
    assert 0 < short.input_tokens < longer.input_tokens
    models = [model.id async for model in sdk.models.list()]
    assert MODEL in models


async def test_scripted_errors_map_to_sdk_exceptions(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(
        AnthropicReply(status=429, error="slow down", retry_after=7),
        AnthropicReply(status=529),
        AnthropicReply(status=500),
    )
    with pytest.raises(anthropic.RateLimitError, match="slow down") as limited:
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    assert limited.value.request_id is not None and limited.value.request_id.startswith("req_")
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert overloaded.value.type == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError) as failed:
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert failed.value.type == "api_error"


async def test_wrong_or_missing_key_is_an_authentication_error(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(AnthropicReply(content="kept for the next good request"))
    async with anthropic.AsyncAnthropic(api_key="sk-ant-wrong", base_url=fake_anthropic.base_url) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await wrong.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert refused.value.type == "authentication_error"
    ok = await sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert ok.content[0].type == "text" and ok.content[0].text == "kept for the next good request"


async def test_refuses_what_the_sdk_would_not_send(fake_anthropic: FakeAnthropicServer) -> None:
    # Plain HTTP: the SDK itself refuses to send these, but other clients (and hand-built requests) can.
    url = f"{fake_anthropic.base_url}/v1/messages"
    key = {"x-api-key": fake_anthropic.api_key}
    version = {"anthropic-version": "2023-06-01"}
    payload = {"model": MODEL, "max_tokens": 10, "messages": USER}
    async with httpx.AsyncClient() as raw:
        no_key = await raw.post(url, json=payload, headers=version)
        no_version = await raw.post(url, json=payload, headers=key)
        no_max_tokens = await raw.post(url, json={"model": MODEL, "messages": USER}, headers=key | version)
        bad_system = await raw.post(
            url, json=payload | {"system": [{"type": "image"}]}, headers=key | version
        )
        accepted = await raw.post(url, json=payload | {"system": "Be brief."}, headers=key | version)
    assert no_key.status_code == 401
    assert no_key.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    assert (no_version.status_code, no_version.json()["error"]["type"]) == (400, "invalid_request_error")
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["error"]["message"] == "max_tokens: Field required"
    assert bad_system.status_code == 400
    assert accepted.status_code == 200 and accepted.json()["content"][0]["text"] == "Echo: hello there"


async def test_error_inside_a_stream_after_partial_content(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(AnthropicReply(content="Half an", status=529, mid_stream=True))
    stream = await sdk.messages.create(model=MODEL, max_tokens=50, messages=USER, stream=True)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as broken:
        async for event in stream:
            seen.append(event.type)
    assert "content_block_delta" in seen and "message_stop" not in seen
    assert broken.value.type == "overloaded_error"


async def test_slow_answer_times_out_and_garbage_is_reported(
    fake_anthropic: FakeAnthropicServer, sdk: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script(AnthropicReply(delay=0.5), AnthropicReply(raw_body="<html>oops"))
    async with anthropic.AsyncAnthropic(
        api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url, timeout=0.1, max_retries=0
    ) as impatient:
        with pytest.raises(anthropic.APITimeoutError):
            await impatient.messages.create(model=MODEL, max_tokens=10, messages=USER)
    # The SDK lets the decoder's error through; pydantic-ai maps it (see below).
    with pytest.raises(json.JSONDecodeError):
        await sdk.messages.create(model=MODEL, max_tokens=10, messages=USER)


# --- pydantic-ai ----------------------------------------------------------------------------------


def _weather_agent(model: AnthropicModel) -> Agent[None, str]:
    agent = Agent(model, instructions="You report the weather.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    return agent


async def test_pydantic_ai_agent_calls_a_tool_then_answers(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"})]),
        AnthropicReply(content="It is sunny in Oslo."),
    )
    model = AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=sdk))
    # An explicit max_tokens keeps pydantic-ai on the non-streaming call; its default for Claude models is
    # large enough that it would stream behind the scenes.
    result = await _weather_agent(model).run("Weather in Oslo?", model_settings={"max_tokens": 512})
    assert result.output == "It is sunny in Oslo."
    assert result.usage.input_tokens > 0
    first, second = (r.body for r in fake_anthropic.requests)
    assert not first.get("stream")
    # Newer Claude models get a framing preamble from pydantic-ai before the agent's own instructions.
    assert {"type": "text", "text": "You report the weather."} in first["system"]
    assert [t["name"] for t in first["tools"]] == ["get_weather"]
    assert first["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"
    call = second["messages"][1]["content"][0]
    result_block = second["messages"][2]["content"][0]
    assert (call["type"], call["input"]) == ("tool_use", {"city": "Oslo"})
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == call["id"]
    assert "sunny in Oslo" in json.dumps(result_block["content"])


async def test_pydantic_ai_streams_text_through_a_base_url_provider(
    fake_anthropic: FakeAnthropicServer,
) -> None:
    fake_anthropic.script(AnthropicReply(content="Streaming works end to end."))
    provider = AnthropicProvider(api_key=fake_anthropic.api_key, base_url=fake_anthropic.base_url)
    agent = Agent(AnthropicModel(MODEL, provider=provider))
    async with agent.run_stream("Say something") as result:
        chunks = [chunk async for chunk in result.stream_text(delta=True, debounce_by=None)]
    assert "".join(chunks) == "Streaming works end to end."
    assert len(chunks) > 1
    assert fake_anthropic.requests[0].body["stream"] is True


async def test_pydantic_ai_reports_overload_and_garbage_as_model_errors(
    sdk: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.script(AnthropicReply(status=529), AnthropicReply(raw_body="<html>oops"))
    agent = Agent(AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=sdk)))
    with pytest.raises(ModelHTTPError) as failed:
        await agent.run("hi", model_settings={"max_tokens": 64})
    assert failed.value.status_code == 529
    with pytest.raises(ModelAPIError, match="decode"):
        await agent.run("hi", model_settings={"max_tokens": 64})
