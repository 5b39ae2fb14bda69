"""A local Anthropic Messages API speaking the real wire format, for the official SDK and pydantic-ai.

It records every request and answers from a script: text, tool calls, streaming (server-sent events),
delays, HTTP errors in Anthropic's error shape, errors inside a stream and garbage bodies. With nothing
scripted it echoes the last user text, so flows work without setup. Requests are checked the way the
real API checks them (key, version header, required fields, tool_use / tool_result pairing, images that
are what their media type says, the computer tool only under its beta), so an engine that builds a
malformed conversation fails here as it would in production.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.llm import RecordedRequest
from tests.fakes.server import BackgroundServer

__all__ = ["AnthropicReply", "FakeAnthropicServer", "RecordedRequest", "ToolUse", "betas_of"]

# The computer tool's versions and the beta each needs (https://docs.anthropic.com/en/docs/agents-and-tools/
# tool-use/computer-use-tool).
COMPUTER_TOOL_BETAS = {
    "computer_20241022": "computer-use-2024-10-22",
    "computer_20250124": "computer-use-2025-01-24",
    "computer_20251124": "computer-use-2025-11-24",
}
IMAGE_MAGIC = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
}

# https://docs.anthropic.com/en/api/errors
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # generated as toolu_... when left out


@dataclass
class AnthropicReply:
    content: str | None = None  # a text block; with tool_calls too, it comes first as Claude does
    tool_calls: list[ToolUse] | None = None
    status: int = 200
    error: str | None = None  # message of the error body when status >= 400
    error_type: str | None = None  # overrides the type derived from status
    retry_after: float = 1.0  # seconds, sent with a 429 as upstream does
    mid_stream: bool = False  # a streaming request gets 200, the content, then an `error` event
    delay: float = 0.0  # seconds before answering (timeouts)
    raw_body: str | None = None  # answer this text verbatim (garbage)
    model: str | None = None
    stop_reason: str | None = None


@dataclass
class FakeAnthropicState:
    script: list[AnthropicReply] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    api_key: str = "sk-ant-test"  # the one key accepted; anything else is a 401
    models: list[str] = field(default_factory=lambda: ["claude-sonnet-4-6", "claude-haiku-4-5"])


class InvalidRequest(Exception):
    """A request the real API refuses with 400 invalid_request_error."""


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return json.dumps(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return "\n".join(_block_text(part) for part in content)
        return str(content)
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text for text in map(_block_text, content) if text)
    return ""


def _input_tokens(body: dict[str, Any]) -> int:
    parts = [_content_text(body.get("system", ""))]
    parts.extend(_content_text(m.get("content")) for m in body.get("messages", []))
    if body.get("tools"):
        parts.append(json.dumps(body["tools"]))  # tool definitions count towards input, as they do upstream
    return _tokens("\n".join(p for p in parts if p))


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    # Tool results travel in user messages; the echo skips them to answer what the person typed, as the
    # OpenAI fake does.
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if texts:
            return "\n".join(texts)
    return ""


def betas_of(headers: Mapping[str, str]) -> set[str]:
    """The betas a request names in its ``anthropic-beta`` header (comma-separated)."""
    return {beta.strip() for beta in headers.get("anthropic-beta", "").split(",") if beta.strip()}


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _error(
    status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = _error_body(kind or ERROR_TYPES.get(status, "api_error"), message)
    return JSONResponse(body, status, headers={"request-id": _request_id(), **(headers or {})})


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _check_system(system: Any) -> None:
    if isinstance(system, str):
        return
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a valid string or a list of text blocks")
    for i, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise InvalidRequest(f"system.{i}: Input should be a text block")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required")
    pending: set[str] = set()  # tool_use ids of the previous assistant turn still waiting for results
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            blocks: list[Any] = []
        elif isinstance(content, list):
            blocks = content
        else:
            raise InvalidRequest(f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise InvalidRequest(f"messages.{i}.content.{j}: Input should be a content block")
        results = {str(b.get("tool_use_id")) for b in blocks if b["type"] == "tool_result"}
        if message["role"] == "user":
            unexpected = sorted(results - pending)
            if unexpected:
                raise InvalidRequest(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        elif results:
            raise InvalidRequest(
                f"messages.{i}.content: `tool_result` blocks are only allowed in user messages"
            )
        if pending - results:
            raise InvalidRequest(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(sorted(pending - results))}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        pending = set()
        if message["role"] == "assistant":
            for j, block in enumerate(blocks):
                if block["type"] != "tool_use":
                    continue
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise InvalidRequest(f"messages.{i}.content.{j}: tool_use needs an id and a name")
                pending.add(block["id"])
    # An assistant turn ending in tool_use with no results after it is fine: the model is asked to go on.


def _check_computer_tool(i: int, tool: dict[str, Any], betas: set[str]) -> None:
    """The computer tool exists only under its beta, and takes the screen's size instead of a schema."""
    kind = str(tool["type"])
    beta = COMPUTER_TOOL_BETAS.get(kind)
    if beta is None or beta not in betas:
        raise InvalidRequest(
            f"tools.{i}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        )
    if tool.get("name") != "computer":
        raise InvalidRequest(f"tools.{i}.{kind}.name: Input should be 'computer'")
    for field_name in ("display_width_px", "display_height_px"):
        value = tool.get(field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"tools.{i}.{kind}.{field_name}: Input should be a positive integer")
    if "input_schema" in tool:
        raise InvalidRequest(f"tools.{i}.{kind}.input_schema: Extra inputs are not permitted")


def _check_image(where: str, block: dict[str, Any]) -> None:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise InvalidRequest(f"{where}.source: Input should be a base64 image source")
    media_type = source.get("media_type")
    if media_type not in IMAGE_MAGIC:
        raise InvalidRequest(f"{where}.source.media_type: Input should be {', '.join(IMAGE_MAGIC)}")
    try:
        data = base64.b64decode(str(source.get("data", "")), validate=True)
    except ValueError:
        raise InvalidRequest(f"{where}.source.data: Invalid base64 data") from None
    if not data.startswith(IMAGE_MAGIC[media_type]):
        raise InvalidRequest(f"{where}: Image does not match the provided media type {media_type}")


def _check_images(messages: list[dict[str, Any]]) -> None:
    """Images, in messages and inside tool results, are real images of their media type."""
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if block["type"] == "image":
                _check_image(f"messages.{i}.content.{j}", block)
            inner = block.get("content") if block["type"] == "tool_result" else None
            for k, part in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(part, dict) and part.get("type") == "image":
                    _check_image(f"messages.{i}.content.{j}.content.{k}", part)


def _check_tools(tools: Any, tool_choice: Any, betas: set[str] | None = None) -> None:
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise InvalidRequest(f"tools.{i}.name: Field required")
            if str(tool.get("type", "")).startswith("computer_"):
                _check_computer_tool(i, tool, betas or set())
            # Server tools (web search, ...) carry a versioned `type` and no schema.
            if tool.get("type", "custom") == "custom" and not isinstance(tool.get("input_schema"), dict):
                raise InvalidRequest(f"tools.{i}.custom.input_schema: Field required")
            names.add(tool["name"])
    if tool_choice is None:
        return
    kind = tool_choice.get("type") if isinstance(tool_choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise InvalidRequest("tool_choice: Input should be auto, any, tool or none")
    if kind == "tool" and tool_choice.get("name") not in names:
        raise InvalidRequest(f"tool_choice: tool {tool_choice.get('name')!r} is not in tools")


def _check_request(body: dict[str, Any], *, needs_max_tokens: bool, betas: set[str] | None = None) -> None:
    for name in ("model", "messages") + (("max_tokens",) if needs_max_tokens else ()):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequest("model: Input should be a valid string")
    if needs_max_tokens:
        max_tokens = body["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidRequest("max_tokens: Input should be an integer greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        raise InvalidRequest("temperature: Input should be between 0 and 1")
    if "system" in body:
        _check_system(body["system"])
    _check_messages(body["messages"])
    _check_images(body["messages"])
    _check_tools(body.get("tools"), body.get("tool_choice"), betas)


@dataclass
class _Answer:
    """One assistant message, built once and then rendered as JSON or as an event stream."""

    message_id: str
    model: str
    blocks: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int

    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def message(self, blocks: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": self.stop_sequence if stop_reason else None,
            "usage": self.usage(),
        }


def _answer(body: dict[str, Any], reply: AnthropicReply) -> _Answer:
    text = reply.content
    if text is None and not reply.tool_calls:
        text = f"Echo: {_last_user_text(body['messages'])}"
    stop_reason = reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")
    stop_sequence = None
    if text and reply.stop_reason is None:
        # The real model stops at a requested stop sequence or when max_tokens runs out.
        for sequence in body.get("stop_sequences") or []:
            if sequence and sequence in text:
                text, stop_reason, stop_sequence = text.split(sequence, 1)[0], "stop_sequence", sequence
                break
        if not reply.tool_calls and _tokens(text) > body["max_tokens"]:
            text, stop_reason = text[: body["max_tokens"] * 4], "max_tokens"
    blocks: list[dict[str, Any]] = []
    if text:
        blocks.append({"type": "text", "text": text})
    for call in reply.tool_calls or []:
        call_id = call.id or f"toolu_{uuid.uuid4().hex[:24]}"
        blocks.append({"type": "tool_use", "id": call_id, "name": call.name, "input": call.input})
    return _Answer(
        message_id=f"msg_{uuid.uuid4().hex[:24]}",
        model=reply.model or body["model"],
        blocks=blocks,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=_input_tokens(body),
        output_tokens=sum(_tokens(_block_text(b)) for b in blocks),
    )


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


async def _stream(answer: _Answer, failure: dict[str, Any] | None) -> AsyncIterator[bytes]:
    start = answer.message([], None)
    start["usage"] = {**answer.usage(), "output_tokens": 1}  # upstream reports 1 before anything is written
    yield _event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(answer.blocks):
        empty = {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}
        yield _event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
        )
        if index == 0:
            yield _event("ping", {"type": "ping"})
        if block["type"] == "text":
            words = block["text"].split(" ")
            deltas = [
                {"type": "text_delta", "text": w if i == len(words) - 1 else w + " "}
                for i, w in enumerate(words)
            ]
        else:
            # Tool input arrives as JSON fragments that parse only once joined, as upstream sends it.
            raw = json.dumps(block["input"])
            half = len(raw) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": part} for part in ("", raw[:half], raw[half:])
            ]
        for delta in deltas:
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    if failure is not None:
        yield _event("error", failure)
        return
    delta = {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence}
    usage = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
    yield _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    yield _event("message_stop", {"type": "message_stop"})


class FakeAnthropicServer(BackgroundServer):
    """Point the SDK at ``base_url`` (it appends ``/v1/messages`` itself) with ``api_key``."""

    def __init__(self) -> None:
        self.state = FakeAnthropicState()
        app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_exception},
        )
        super().__init__(app)

    # --- test API ---------------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.state.api_key

    def reset(self) -> None:
        self.state.script.clear()
        self.state.requests.clear()
        self.state.api_key = "sk-ant-test"

    def script(self, *replies: AnthropicReply) -> None:
        self.state.script.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    def tool_results(self, index: int = -1) -> list[dict[str, Any]]:
        """The ``tool_result`` blocks of a request's last message (the answers to the model's calls)."""
        content = self.requests[index].body["messages"][-1]["content"]
        return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]

    # --- endpoints --------------------------------------------------------------------------------

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(
            status, str(getattr(exc, "detail", "error")), ERROR_TYPES.get(status, "not_found_error")
        )

    def _refuse_key(self, request: Request) -> Response | None:
        # The API takes the key as `x-api-key` or as a bearer token; recent SDKs send the bearer form.
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if key is None and authorization.lower().startswith("bearer "):
            key = authorization[len("bearer ") :]
        if not key:
            return _error(401, "x-api-key header is required")
        if key != self.state.api_key:
            return _error(401, "invalid x-api-key")
        return None

    async def _accept(self, request: Request, *, needs_max_tokens: bool) -> dict[str, Any] | Response:
        """Record the request, then refuse it as the real API would or return its body."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw or b"{}")
        except ValueError:
            body = None
        self.state.requests.append(
            RecordedRequest(request.url.path, dict(request.headers), body if isinstance(body, dict) else {})
        )
        refused = self._refuse_key(request)
        if refused is not None:
            return refused
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required")
        if not isinstance(body, dict):
            return _error(400, "The request body is not valid JSON.")
        try:
            _check_request(body, needs_max_tokens=needs_max_tokens, betas=betas_of(request.headers))
        except InvalidRequest as exc:
            return _error(400, str(exc))
        return body

    async def _messages(self, request: Request) -> Response:
        body = await self._accept(request, needs_max_tokens=True)
        if isinstance(body, Response):
            return body
        reply = self.state.script.pop(0) if self.state.script else AnthropicReply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        streaming = bool(body.get("stream"))
        headers = {"request-id": _request_id()}
        if reply.raw_body is not None:
            media_type = "text/event-stream" if streaming else "application/json"
            return Response(reply.raw_body, reply.status, headers=headers, media_type=media_type)
        failure: dict[str, Any] | None = None
        if reply.status >= 400:
            kind = reply.error_type or ERROR_TYPES.get(reply.status, "api_error")
            message = reply.error or {"overloaded_error": "Overloaded"}.get(kind, "scripted failure")
            if not (streaming and reply.mid_stream):
                if reply.status == 429:
                    headers["retry-after"] = f"{reply.retry_after:g}"
                return _error(reply.status, message, kind, headers)
            failure = _error_body(kind, message)
        answer = _answer(body, reply)
        if streaming:
            return StreamingResponse(
                _stream(answer, failure),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        return JSONResponse(answer.message(answer.blocks, answer.stop_reason), headers=headers)

    async def _count_tokens(self, request: Request) -> Response:
        body = await self._accept(request, needs_max_tokens=False)
        if isinstance(body, Response):
            return body
        return JSONResponse({"input_tokens": _input_tokens(body)})

    async def _models(self, request: Request) -> Response:
        self.state.requests.append(RecordedRequest(request.url.path, dict(request.headers), {}))
        refused = self._refuse_key(request)
        if refused is not None:
            return refused
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in self.state.models
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
