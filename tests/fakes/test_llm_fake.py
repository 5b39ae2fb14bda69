"""The fake LLM server speaks OpenAI's wire format well enough for the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture
def sdk(fake_llm: FakeLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=fake_llm.api_base, max_retries=0)


async def test_echoes_without_a_script_and_records_the_request(
    sdk: openai.AsyncOpenAI, fake_llm: FakeLLMServer
) -> None:
    completion = await sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert fake_llm.requests[0].body["model"] == "gpt-4o"
    assert fake_llm.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_scripted_tool_calls_and_streaming(sdk: openai.AsyncOpenAI, fake_llm: FakeLLMServer) -> None:
    fake_llm.script(
        ScriptedReply(tool_calls=[{"id": "call_1", "function": {"name": "current_time", "arguments": "{}"}}]),
        ScriptedReply(content="It is noon."),
    )
    first = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "time?"}])
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.tool_calls is not None
    assert first.choices[0].message.tool_calls[0].function.name == "current_time"
    stream = await sdk.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "time?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts = []
    usage = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(parts) == "It is noon."
    assert usage is not None and usage.completion_tokens > 0


async def test_scripted_errors_reach_the_sdk_as_api_errors(
    sdk: openai.AsyncOpenAI, fake_llm: FakeLLMServer
) -> None:
    fake_llm.script(ScriptedReply(status=429, error="slow down"), ScriptedReply(status=500))
    with pytest.raises(openai.RateLimitError, match="slow down"):
        await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


async def test_embeddings_are_deterministic(sdk: openai.AsyncOpenAI) -> None:
    first = await sdk.embeddings.create(model="e", input=["a cat sat", "a dog ran"])
    again = await sdk.embeddings.create(model="e", input="a cat sat")
    assert len(first.data) == 2
    assert first.data[0].embedding == again.data[0].embedding
    assert first.data[0].embedding != first.data[1].embedding
