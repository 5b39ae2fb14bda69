"""Between the Responses API's items and the engine: input items to messages, an outcome to output items.

Read: messages (``system`` / ``developer`` join the caller's instructions; ``user`` with ``input_text``
and ``input_image`` parts; ``assistant`` with ``output_text``), ``function_call`` and
``function_call_output``; ``reasoning`` items are skipped. Anything else is refused with a 400 that names it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
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

from hutch.core.errors import BadRequest
from hutch.core.ids import new_id
from hutch.engine.openai_schemas import FunctionDef
from hutch.engine.runner import TurnOutcome

SKIPPED_ITEMS = frozenset({"reasoning"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024


class InvalidInput(BadRequest):
    """A 400 that names the request's field, as OpenAI's errors do (``param``)."""

    def __init__(self, detail: str, param: str = "input") -> None:
        super().__init__(detail)
        self.param = param


@dataclass
class EngineInput:
    """What the items say, for a turn: the caller's instructions, the history, and the new question (None
    after function results) with the images sent with it."""

    system: list[str] = field(default_factory=list)
    history: list[ModelMessage] = field(default_factory=list)
    prompt: str | None = None
    media: list[BinaryContent] = field(default_factory=list)
    sees_images: bool = False  # an image anywhere in the items: the agent's model must read images


def input_items(given: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's ``input`` as items (a string is one user message)."""
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}]
    if not given:
        raise InvalidInput("input: give a string or at least one input item.")
    return given


def to_engine(items: list[dict[str, Any]]) -> EngineInput:
    read = EngineInput()
    request_parts: list[ModelRequestPart] = []
    response_parts: list[ModelResponsePart] = []
    call_names: dict[str, str] = {}

    def flush_request() -> None:
        if request_parts:
            read.history.append(ModelRequest(parts=list(request_parts)))
            request_parts.clear()

    def flush_response() -> None:
        if response_parts:
            read.history.append(ModelResponse(parts=list(response_parts)))
            response_parts.clear()

    for item in items:
        kind = item.get("type") or "message"
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                read.system.append(_text_of(item))
            elif role == "user":
                flush_response()
                content = _user_content(item)
                read.sees_images |= not isinstance(content, str)
                request_parts.append(UserPromptPart(content))
            elif role == "assistant":
                flush_request()
                if text := _text_of(item):
                    response_parts.append(TextPart(text))
            else:
                raise InvalidInput(
                    f"input: a message's role must be user, assistant, system or developer; not {role!r}."
                )
        elif kind == "function_call":
            flush_request()
            call_id, name = str(item.get("call_id") or ""), str(item.get("name") or "")
            if not call_id or not name:
                raise InvalidInput("input: a function_call item needs its call_id and name.")
            call_names[call_id] = name
            response_parts.append(
                ToolCallPart(name, str(item.get("arguments") or "{}"), tool_call_id=call_id)
            )
        elif kind == "function_call_output":
            flush_response()
            call_id = str(item.get("call_id") or "")
            if call_id not in call_names:
                raise InvalidInput(
                    f"input: no function call {call_id!r} to answer; give its function_call item, or "
                    "continue the response that made it with previous_response_id."
                )
            request_parts.append(ToolReturnPart(call_names[call_id], _output_of(item), tool_call_id=call_id))
        elif kind not in SKIPPED_ITEMS:
            raise InvalidInput(f"input: items of type {kind!r} are not supported.")
    flush_response()
    if not request_parts:
        raise InvalidInput("input: the last item must be a user message or a function_call_output.")
    last = request_parts[-1]
    if len(request_parts) == 1 and isinstance(last, UserPromptPart):
        request_parts.clear()  # the usual case: the history, then the new question
        if isinstance(last.content, str):
            read.prompt = last.content
        else:
            read.prompt = "".join(p for p in last.content if isinstance(p, str))
            read.media = [p for p in last.content if isinstance(p, BinaryContent)]
    flush_request()
    return read


def _parts(item: dict[str, Any]) -> list[dict[str, Any]]:
    content = item.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise InvalidInput("input: a message's content is a string or a list of parts.")
    return [p for p in content if isinstance(p, dict)]


def _text_of(item: dict[str, Any]) -> str:
    texts = []
    for part in _parts(item):
        if part.get("type") in TEXT_PARTS:
            texts.append(str(part.get("text") or ""))
        elif part.get("type") != "refusal":
            raise InvalidInput(f"input: {part.get('type')!r} parts are only read in a user's message.")
    return "".join(texts)


def _user_content(item: dict[str, Any]) -> str | list[UserContent]:
    parts = _parts(item)
    if all(p.get("type") in TEXT_PARTS for p in parts):
        return "".join(str(p.get("text") or "") for p in parts)
    content: list[UserContent] = []
    for part in parts:
        kind = part.get("type")
        if kind in TEXT_PARTS:
            content.append(str(part.get("text") or ""))
        elif kind == "input_image":
            content.append(image_from_url(part.get("image_url")))
        else:
            raise InvalidInput(f"input: {kind!r} parts are not supported; send text and images.")
    return content


def image_from_url(url: object) -> BinaryContent:
    """An image sent inline as a ``data:`` URL (Hutch fetches no URL a caller names)."""
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise InvalidInput(
            "input: send images as data:image/...;base64, URLs (image_url); "
            "file ids and web URLs are not fetched."
        )
    header, _, encoded = url.partition(";base64,")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("input: an image's base64 data is not valid.") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput("input: an image is larger than 20 MB.")
    return BinaryContent(data=data, media_type=header.removeprefix("data:").lower())


def _output_of(item: dict[str, Any]) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # text parts (images in a function's output are not read)
        return "".join(str(p.get("text") or "") for p in output if isinstance(p, dict))
    return ""


def function_tools(tools: list[dict[str, Any]] | None) -> list[ToolDefinition]:
    """The caller's function tools; the agent's own tools (built-in and connected) run inside Hutch."""
    found = []
    for tool in tools or []:
        if tool.get("type") != "function":
            raise InvalidInput(
                f"tools: callers offer function tools only, not {tool.get('type')!r}; the agent's "
                "own tools (search, memory, connected tools) are set on the agent.",
                param="tools",
            )
        try:
            spec = FunctionDef.model_validate({k: v for k, v in tool.items() if k != "type"})
        except ValidationError as exc:
            raise InvalidInput(f"tools: {exc.errors()[0]['msg']}", param="tools") from None
        found.append(
            ToolDefinition(
                name=spec.name,
                description=spec.description,
                parameters_json_schema=spec.parameters,
                strict=spec.strict,
            )
        )
    return found


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def output_items(outcome: TurnOutcome, text: str, message_id: str) -> list[dict[str, Any]]:
    """What the agent answered, as output items: its text, then the calls to the caller's functions."""
    items = [message_item(message_id, text)] if text else []
    for call in outcome.external_calls:
        items.append(
            {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    return items


def usage_of(outcome: TurnOutcome) -> dict[str, Any]:
    return {
        "input_tokens": outcome.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": outcome.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
    }
