"""Request and answer shapes of Anthropic's Messages API, as much of it as Hutch serves.

Content blocks stay JSON objects (``translate`` reads text, images, ``tool_use`` and ``tool_result``, and
refuses the others with a 400 naming them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hutch.core.bounds import ApiEndUser


class MessageIn(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # cache_control, ...: accepted, ignored

    type: str | None = None  # "custom" or absent: the caller's own; Anthropic's server tools are refused
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class RequestMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: ApiEndUser | None = None


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # top_k, thinking, service_tier, ...: accepted, ignored

    model: str = Field(min_length=1, max_length=200)
    max_tokens: int = Field(ge=1, le=200_000)
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)
    system: str | list[dict[str, Any]] | None = None
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: dict[str, Any] | None = None
    metadata: RequestMetadata | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None


class MessageUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageOut(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: Literal["end_turn", "tool_use", "max_tokens"] | None
    stop_sequence: str | None = None
    usage: MessageUsage
