"""Between OpenAI's wire format and the engine: messages in, completions and chunks out."""

from __future__ import annotations

import json
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.tools import ToolDefinition

from hutch.core.errors import BadRequest
from hutch.engine.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatMessageIn,
    Choice,
    CompletionUsage,
    FunctionCall,
    ToolCall,
    ToolIn,
)
from hutch.engine.runner import TurnOutcome


def text_of(message: ChatMessageIn) -> str:
    """The text of a message; content parts other than text (images, audio) are refused."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.get("type") != "text":
            raise BadRequest(f"Only text content is supported, not {part.get('type')!r} parts.")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def to_engine(messages: list[ChatMessageIn]) -> tuple[list[str], list[ModelMessage], str | None]:
    """The caller's system messages, the history, and the new user prompt (None after tool results)."""
    system: list[str] = []
    history: list[ModelMessage] = []
    pending: list[ModelRequestPart] = []
    call_names: dict[str, str] = {}

    def flush() -> None:
        if pending:
            history.append(ModelRequest(parts=list(pending)))
            pending.clear()

    for message in messages:
        if message.role in ("system", "developer"):
            system.append(text_of(message))
        elif message.role == "user":
            pending.append(UserPromptPart(text_of(message)))
        elif message.role == "tool":
            if not message.tool_call_id or message.tool_call_id not in call_names:
                raise BadRequest("A tool message must answer a tool call of an earlier assistant message.")
            pending.append(
                ToolReturnPart(
                    call_names[message.tool_call_id], text_of(message), tool_call_id=message.tool_call_id
                )
            )
        else:
            flush()
            parts: list[ModelResponsePart] = []
            if text := text_of(message):
                parts.append(TextPart(text))
            for call in message.tool_calls or []:
                call_names[call.id] = call.function.name
                parts.append(ToolCallPart(call.function.name, call.function.arguments, tool_call_id=call.id))
            history.append(ModelResponse(parts=parts))
    if not pending:
        raise BadRequest("The last message must come from the user or answer a tool call.")
    prompt: str | None = None
    last = pending[-1]
    if isinstance(last, UserPromptPart) and len(pending) == 1 and isinstance(last.content, str):
        prompt = last.content  # the usual case: history, then the new question
        pending.clear()
    flush()
    return system, history, prompt


def tool_definitions(tools: list[ToolIn] | None) -> list[ToolDefinition]:
    return [
        ToolDefinition(
            name=tool.function.name,
            description=tool.function.description,
            parameters_json_schema=tool.function.parameters,
            strict=tool.function.strict,
        )
        for tool in tools or []
    ]


def tool_calls_out(outcome: TurnOutcome) -> list[ToolCall] | None:
    if not outcome.external_calls:
        return None
    return [
        ToolCall(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))
        for call in outcome.external_calls
    ]


def usage_of(outcome: TurnOutcome) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=outcome.input_tokens,
        completion_tokens=outcome.output_tokens,
        total_tokens=outcome.input_tokens + outcome.output_tokens,
    )


def completion(completion_id: str, created: int, model: str, outcome: TurnOutcome) -> ChatCompletion:
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=outcome.text or None, tool_calls=tool_calls_out(outcome)),
                finish_reason=outcome.finish_reason,
            )
        ],
        usage=usage_of(outcome),
    )


def chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None
) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {json.dumps(body)}\n\n"


def usage_chunk(completion_id: str, created: int, model: str, outcome: TurnOutcome) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_of(outcome).model_dump(),
    }
    return f"data: {json.dumps(body)}\n\n"
