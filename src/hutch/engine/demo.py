"""The demo model ("Demo — no AI"): answers without any provider key so every flow can be tried.

It echoes the user's last message, labelled so nobody mistakes it for a real model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

DEMO_LABEL = "Demo — no AI"


def _last_user_text(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def demo_reply(messages: list[ModelMessage]) -> str:
    text = _last_user_text(messages).strip()
    return f"[{DEMO_LABEL}] You said: {text}" if text else f"[{DEMO_LABEL}] Say something and I will echo it."


def _answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[TextPart(demo_reply(messages))])


async def _stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    # Word by word, like a model streams; the pieces join back to exactly the non-streamed answer.
    words = demo_reply(messages).split(" ")
    for n, word in enumerate(words):
        yield word if n == 0 else " " + word


def demo_model() -> FunctionModel:
    return FunctionModel(_answer, stream_function=_stream, model_name="echo")
