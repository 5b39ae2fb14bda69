"""The OpenAI client that skips the SDK's walk of chat bodies sends exactly what the stock client sends."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic_ai.messages import (
    ImageUrl,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from hutch.engine.openai_client import AsBuiltOpenAI
from tests.fakes.llm import FakeLLMServer, ScriptedReply

CONVERSATION: list[ModelMessage] = [
    ModelRequest(parts=[SystemPromptPart("You are terse."), UserPromptPart("What time is it?")]),
    ModelResponse(parts=[TextPart("Let me look."), ToolCallPart("current_time", {}, tool_call_id="call_1")]),
    ModelRequest(parts=[ToolReturnPart("current_time", "12:00", tool_call_id="call_1")]),
    ModelResponse(parts=[TextPart("It is noon.")]),
    ModelRequest(parts=[UserPromptPart(["And this picture?", ImageUrl("https://example.com/cat.png")])]),
]
TOOLS = [
    ToolDefinition(
        name="remember",
        description="Remember a fact.",
        parameters_json_schema={
            "type": "object",
            "properties": {"fact": {"type": "string", "description": "The fact."}},
            "required": ["fact"],
            "additionalProperties": False,
        },
        strict=True,
    ),
    ToolDefinition(name="current_time", parameters_json_schema={"type": "object", "properties": {}}),
]


async def sent_body(
    client: AsyncOpenAI, fake_llm: FakeLLMServer, *, stream: bool, tools: bool
) -> dict[str, Any]:
    model = OpenAIChatModel("gpt-4o", provider=OpenAIProvider(openai_client=client))
    settings = ModelSettings(
        temperature=0.3, max_tokens=50, stop_sequences=["END"], seed=7, timeout=10, extra_body={"top_k": 3}
    )
    parameters = ModelRequestParameters(function_tools=TOOLS if tools else [], allow_text_output=True)
    fake_llm.script(ScriptedReply(content="Done."))
    if stream:
        async with model.request_stream(CONVERSATION, settings, parameters) as events:
            async for _ in events:
                pass
    else:
        response = await model.request(CONVERSATION, settings, parameters)
        assert response.parts == [TextPart("Done.")]
    body = fake_llm.requests[-1].body
    await client.close()
    return body


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("tools", [True, False], ids=["with-tools", "no-tools"])
async def test_chat_bodies_are_sent_as_the_sdk_would_send_them(
    fake_llm: FakeLLMServer, stream: bool, tools: bool
) -> None:
    def client(cls: type[AsyncOpenAI]) -> AsyncOpenAI:
        return cls(api_key="sk-test", base_url=fake_llm.api_base, max_retries=0)

    expected = await sent_body(client(AsyncOpenAI), fake_llm, stream=stream, tools=tools)
    sent = await sent_body(client(AsBuiltOpenAI), fake_llm, stream=stream, tools=tools)
    assert sent == expected
    assert len(sent["messages"]) == 6 and sent["stream"] is stream
    assert sent["stop"] == ["END"] and sent["top_k"] == 3
    assert ("tools" in sent) is tools


async def test_copies_of_the_client_keep_skipping_the_walk(fake_llm: FakeLLMServer) -> None:
    client = AsBuiltOpenAI(api_key="sk-test", base_url=fake_llm.api_base)
    copy = client.with_options(max_retries=1)
    assert isinstance(copy, AsBuiltOpenAI)
    assert type(copy.chat.completions) is type(client.chat.completions)
    await client.close()
