"""OpenAI's Responses API (``POST /v1/responses``) for the fake OpenAI-compatible server, as far as Hutch
uses it: computer-use models (``computer-use-preview``), whose ``computer_call`` items are answered with
``computer_call_output`` items carrying a screenshot, plus text and function calls. Not streamed.

Requests are checked as the real API checks them: the computer tool's display and environment, the
``truncation: auto`` it requires, every output paired with an earlier call of its kind, and screenshots
that are images of the type their data URL names.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from tests.fakes.llm import ScriptedReply

IMAGE_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG"}


class InvalidResponsesRequest(Exception):
    """What the real API answers 400 invalid_request_error for."""


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _check_screenshot(where: str, output: Any) -> None:
    if not isinstance(output, dict) or output.get("type") != "computer_screenshot":
        raise InvalidResponsesRequest(f"{where}.output: expected a computer_screenshot")
    url = str(output.get("image_url") or "")
    head, _, data = url.partition(";base64,")
    media_type = head.removeprefix("data:")
    if not head.startswith("data:") or media_type not in IMAGE_MAGIC:
        raise InvalidResponsesRequest(f"{where}.output.image_url: expected a base64 data URL of an image")
    try:
        image = base64.b64decode(data, validate=True)
    except ValueError:
        raise InvalidResponsesRequest(f"{where}.output.image_url: invalid base64 data") from None
    if not image.startswith(IMAGE_MAGIC[media_type]):
        raise InvalidResponsesRequest(f"{where}.output.image_url: the image is not {media_type}")


def check_request(body: dict[str, Any]) -> None:
    for name in ("model", "input"):
        if name not in body:
            raise InvalidResponsesRequest(f"Missing required parameter: '{name}'.")
    computer = False
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") == "computer_use_preview":
            computer = True
            for name in ("display_width", "display_height"):
                if not isinstance(tool.get(name), int) or tool[name] < 1:
                    raise InvalidResponsesRequest(f"tools[{i}].{name}: expected a positive integer")
            if tool.get("environment") not in ("windows", "mac", "linux", "ubuntu", "browser"):
                raise InvalidResponsesRequest(f"tools[{i}].environment: invalid value")
        elif tool.get("type") == "function" and not isinstance(tool.get("name"), str):
            raise InvalidResponsesRequest(f"tools[{i}].name: missing")
    if computer and body.get("truncation") != "auto":
        raise InvalidResponsesRequest("The computer_use_preview tool requires truncation to be 'auto'.")
    items = body["input"] if isinstance(body["input"], list) else []
    calls: dict[str, str] = {}  # call_id -> the kind of call
    for i, item in enumerate(items):
        kind = item.get("type")
        if kind in ("computer_call", "function_call"):
            calls[str(item.get("call_id"))] = kind
        elif kind in ("computer_call_output", "function_call_output"):
            call_id = str(item.get("call_id"))
            if calls.get(call_id) != kind.removesuffix("_output"):
                raise InvalidResponsesRequest(
                    f"input[{i}]: No tool call found for {kind} with call_id {call_id}."
                )
            if kind == "computer_call_output":
                _check_screenshot(f"input[{i}]", item.get("output"))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _output_items(reply: ScriptedReply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.content:
        items.append(
            {
                "type": "message",
                "id": _new_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.content, "annotations": []}],
            }
        )
    for call in reply.tool_calls or []:
        items.append(
            {
                "type": "function_call",
                "id": _new_id("fc"),
                "call_id": call.get("id") or _new_id("call"),
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
        )
    if reply.computer_action is not None:
        items.append(
            {
                "type": "computer_call",
                "id": _new_id("cu"),
                "call_id": _new_id("call"),
                "action": reply.computer_action,
                "pending_safety_checks": reply.safety_checks or [],
                "status": "completed",
            }
        )
    return items


def answer(body: dict[str, Any], reply: ScriptedReply) -> Response:
    try:
        check_request(body)
    except InvalidResponsesRequest as exc:
        error = {"message": str(exc), "type": "invalid_request_error", "param": None, "code": None}
        return JSONResponse({"error": error}, 400)
    if reply.content is None and not reply.tool_calls and reply.computer_action is None:
        reply.content = "Done."
    output = _output_items(reply)
    input_tokens = _tokens(json.dumps(body["input"]))
    output_tokens = _tokens(json.dumps(output))
    return JSONResponse(
        {
            "id": _new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "model": reply.model or body["model"],
            "status": "completed",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "truncation": body.get("truncation", "disabled"),
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": {},
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }
    )
