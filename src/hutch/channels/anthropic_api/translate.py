"""Between Anthropic's Messages format and the engine: messages in, a message and its stream events out."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import (
    BinaryContent,
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserContent,
    UserPromptPart,
)
from pydantic_ai.tools import ToolDefinition

from hutch.channels.anthropic_api.schemas import MessageIn, MessageOut, MessageUsage, ToolIn
from hutch.core.errors import BadRequest
from hutch.engine.runner import TurnOutcome

SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass
class EngineInput:
    """The caller's system prompt, the history, the new question (None after tool results) and its images."""

    system: list[str] = field(default_factory=list)
    history: list[ModelMessage] = field(default_factory=list)
    prompt: str | None = None
    media: list[BinaryContent] = field(default_factory=list)
    sees_images: bool = False


def system_of(system: str | list[dict[str, Any]] | None) -> list[str]:
    if system is None:
        return []
    if isinstance(system, str):
        return [system]
    return [str(block.get("text") or "") for block in system if block.get("type") == "text"]


def to_engine(messages: list[MessageIn]) -> EngineInput:
    read = EngineInput()
    call_names: dict[str, str] = {}
    for message in messages:
        blocks = _blocks(message.content)
        if message.role == "assistant":
            parts: list[ModelResponsePart] = []
            for block in blocks:
                kind = block.get("type")
                if kind == "text":
                    parts.append(TextPart(str(block.get("text") or "")))
                elif kind == "tool_use":
                    call_id, name = str(block.get("id") or ""), str(block.get("name") or "")
                    call_names[call_id] = name
                    parts.append(ToolCallPart(name, block.get("input") or {}, tool_call_id=call_id))
                elif kind not in SKIPPED_BLOCKS:
                    raise BadRequest(f"messages: {kind!r} blocks are not supported in an assistant message.")
            read.history.append(ModelResponse(parts=parts))
            continue
        request: list[ModelRequestPart] = []
        content: list[UserContent] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "text":
                content.append(str(block.get("text") or ""))
            elif kind == "image":
                content.append(_image(block.get("source")))
                read.sees_images = True
            elif kind == "tool_result":
                call_id = str(block.get("tool_use_id") or "")
                if call_id not in call_names:
                    raise BadRequest(f"messages: tool_result {call_id!r} answers no earlier tool_use block.")
                request.append(ToolReturnPart(call_names[call_id], _result_text(block), tool_call_id=call_id))
            else:
                raise BadRequest(f"messages: {kind!r} blocks are not supported; send text and images.")
        if content:
            texts_only = all(isinstance(c, str) for c in content)
            request.append(UserPromptPart("".join(str(c) for c in content) if texts_only else content))
        read.history.append(ModelRequest(parts=request))
    last = read.history[-1] if read.history else None
    if not isinstance(last, ModelRequest):
        raise BadRequest("messages: the last message must come from the user.")
    if len(last.parts) == 1 and isinstance(last.parts[0], UserPromptPart):
        read.history.pop()  # the usual case: the history, then the new question
        question = last.parts[0].content
        if isinstance(question, str):
            read.prompt = question
        else:
            read.prompt = "".join(c for c in question if isinstance(c, str))
            read.media = [c for c in question if isinstance(c, BinaryContent)]
    return read


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _image(source: object) -> BinaryContent:
    """An image sent inline (``base64``); Hutch fetches no URL a caller names."""
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise BadRequest("messages: send images as base64 sources; image URLs are not fetched.")
    media_type = str(source.get("media_type") or "")
    if not media_type.startswith("image/"):
        raise BadRequest("messages: an image source needs an image/* media_type.")
    try:
        data = base64.b64decode(str(source.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("messages: an image's base64 data is not valid.") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise BadRequest("messages: an image is larger than 20 MB.")
    return BinaryContent(data=data, media_type=media_type)


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(str(b.get("text") or "") for b in content if isinstance(b, dict))
    return str(content or "")


def tool_definitions(tools: list[ToolIn] | None) -> list[ToolDefinition]:
    found = []
    for tool in tools or []:
        if tool.type not in (None, "custom"):
            raise BadRequest(
                f"tools: Anthropic's server tools ({tool.type}) are not offered; the agent's own tools "
                "(search, memory, connected tools) are set on the agent."
            )
        found.append(
            ToolDefinition(
                name=tool.name, description=tool.description, parameters_json_schema=tool.input_schema
            )
        )
    return found


def content_of(outcome: TurnOutcome, text: str) -> list[dict[str, Any]]:
    """The answer's content blocks: its text, then the calls to the caller's tools."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for call in outcome.external_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def stop_reason(outcome: TurnOutcome) -> str:
    return "tool_use" if outcome.external_calls else "end_turn"


def message_of(message_id: str, model: str, outcome: TurnOutcome) -> MessageOut:
    return MessageOut(
        id=message_id,
        model=model,
        content=content_of(outcome, outcome.text),
        stop_reason="tool_use" if outcome.external_calls else "end_turn",
        usage=MessageUsage(input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens),
    )


def event(kind: str, **fields: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n"
