"""A local OpenAI-compatible server speaking the real wire format, for the official SDKs.

It records every request and answers from a script: plain replies, tool calls, streaming, delays and
HTTP errors; computer-use models' actions on the Responses API (``llm_responses``). With nothing
scripted it echoes the last user message, so flows work without setup.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.llm_responses import answer as responses_answer
from tests.fakes.server import BackgroundServer


@dataclass
class ScriptedReply:
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    status: int = 200
    error: str | None = None  # message of an OpenAI-style error body when status >= 400
    delay: float = 0.0  # seconds before answering (timeouts)
    raw_body: str | None = None  # answer this text verbatim (garbage)
    model: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None  # report these counts instead of the estimate (cost tests)
    completion_tokens: int | None = None
    # On the Responses API (/v1/responses): a computer-use model's action ({"type": "click", "x": .., ...})
    # answered as a computer_call, with the safety checks it asks a person to acknowledge.
    computer_action: dict[str, Any] | None = None
    safety_checks: list[dict[str, str]] | None = None


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLMState:
    script: list[ScriptedReply] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    embedding_dimensions: int = 384
    models: list[str] = field(default_factory=lambda: ["gpt-4o", "gpt-4o-mini"])


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        elif content:
            parts.append(str(content))
    return "\n".join(parts)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _prompt_text([message])
    return ""


def _error(status: int, message: str) -> JSONResponse:
    kind = {401: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
        status, "api_error"
    )
    return JSONResponse({"error": {"message": message, "type": kind, "code": None, "param": None}}, status)


class FakeLLMServer(BackgroundServer):
    def __init__(self) -> None:
        self.state = FakeLLMState()
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        super().__init__(app)

    # --- test API ---------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def reset(self) -> None:
        self.state.script.clear()
        self.state.requests.clear()

    def script(self, *replies: ScriptedReply) -> None:
        self.state.script.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    # --- endpoints --------------------------------------------------------------------------------

    async def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(await request.body() or b"{}")
        self.state.requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        return body

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        reply = self.state.script.pop(0) if self.state.script else ScriptedReply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw_body is not None:
            return Response(reply.raw_body, status_code=reply.status, media_type="application/json")
        if reply.status >= 400:
            return _error(reply.status, reply.error or "scripted failure")
        messages = body.get("messages", [])
        content = reply.content
        if content is None and not reply.tool_calls:
            content = f"Echo: {_last_user_text(messages)}"
        model = reply.model or body.get("model", "fake-model")
        prompt_tokens = reply.prompt_tokens or _tokens(_prompt_text(messages))
        completion_tokens = reply.completion_tokens or (
            _tokens(content or "") + _tokens(json.dumps(reply.tool_calls or []))
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(
                    completion_id, created, model, content, reply.tool_calls, finish, usage, include_usage
                ),
                media_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call.get("id", f"call_{i}"), "type": "function", "function": call["function"]}
                for i, call in enumerate(reply.tool_calls)
            ]
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            }
        )

    async def _responses(self, request: Request) -> Response:
        body = await self._record(request)
        reply = self.state.script.pop(0) if self.state.script else ScriptedReply()
        if reply.status >= 400:
            return _error(reply.status, reply.error or "scripted failure")
        return responses_answer(body, reply)

    async def _stream(
        self,
        completion_id: str,
        created: int,
        model: str,
        content: str | None,
        tool_calls: list[dict[str, Any]] | None,
        finish: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        if content:
            words = content.split(" ")
            for i, word in enumerate(words):
                yield chunk({"content": word if i == len(words) - 1 else word + " "})
        for i, call in enumerate(tool_calls or []):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call.get("id", f"call_{i}"),
                            "type": "function",
                            "function": call["function"],
                        }
                    ]
                }
            )
        yield chunk({}, finish)
        if include_usage:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(payload)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _models(self, request: Request) -> Response:
        self.state.requests.append(RecordedRequest(request.url.path, dict(request.headers), {}))
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.state.models
                ],
            }
        )

    async def _embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        dimensions = int(body.get("dimensions") or self.state.embedding_dimensions)
        # As the API answers: base64 when asked, else a list of numbers.
        encode = embedding_as_base64 if body.get("encoding_format") == "base64" else list
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode(deterministic_embedding(line, dimensions)),
            }
            for i, line in enumerate(inputs)
        ]
        tokens = sum(_tokens(t) for t in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def embedding_as_base64(vector: list[float]) -> str:
    """The API's ``encoding_format: base64``: the vector's little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def deterministic_embedding(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from the words of ``text``: similar texts share components."""
    vector = [0.0] * dimensions
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
