"""API shapes of chat, conversations, messages and memories."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from hutch.browser.service import screenshot_url
from hutch.conversations.models import (
    AttachmentKind,
    ConversationStatus,
    MemoryKind,
    MessageRole,
    MessageStatus,
)


def shown_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls as the API shows them: ``name``, ``arguments``, ``result`` and, for a browser action,
    ``screenshot_url`` (answered to members of the agent's org only); what else is recorded stays (``args``
    is the older name of ``arguments``, ``ms``, ``metered``...)."""
    shown = []
    for call in calls:
        out = dict(call)
        out.setdefault("arguments", call.get("args", {}))
        screenshot = call.get("screenshot")
        if isinstance(screenshot, str) and screenshot:
            out["screenshot_url"] = screenshot_url(screenshot)
        shown.append(out)
    return shown


ToolCalls = Annotated[list[dict[str, Any]], AfterValidator(shown_tool_calls)]


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=32_000)
    conversation_id: str | None = Field(default=None, max_length=32)


class ChatMessage(BaseModel):
    id: str
    role: Literal["assistant"] = "assistant"
    content: str
    status: MessageStatus
    model: str | None
    # The tools the agent called for this answer: name, args, result (cut short), ms; and for tools that reach
    # outside Hutch, metered and cost_micro_usd.
    tool_calls: ToolCalls = Field(default_factory=list)


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int


class ChatResponse(BaseModel):
    conversation_id: str
    message: ChatMessage
    usage: Usage


class ConversationOut(BaseModel):
    id: str
    channel: str
    end_user: str
    title: str
    message_count: int
    created_at: datetime
    last_message_at: datetime | None
    closed_at: datetime | None


class ConversationList(BaseModel):
    items: list[ConversationOut]
    total: int


class AttachmentOut(BaseModel):
    """A file sent with a message; ``url`` answers its bytes to members of the org."""

    id: str
    kind: AttachmentKind
    content_type: str
    filename: str
    size_bytes: int
    url: str
    transcript: str | None = None  # a voice note's, when it was transcribed
    duration_seconds: float | None = None


class MessageOut(BaseModel):
    id: str
    seq: int
    role: MessageRole
    content: str
    status: MessageStatus
    error: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    tool_calls: ToolCalls
    created_at: datetime
    attachments: list[AttachmentOut] = Field(default_factory=list)


class MessageList(BaseModel):
    items: list[MessageOut]
    total: int


class MemoryOut(BaseModel):
    id: str
    end_user: str
    kind: MemoryKind
    content: str
    created_at: datetime


class MemoryList(BaseModel):
    items: list[MemoryOut]


# --- the inbox -----------------------------------------------------------------------------------------


class EndUserRef(BaseModel):
    id: str | None  # None only for a conversation whose end user is not recorded
    display_name: str
    username: str | None = None
    blocked: bool = False
    # The last time a per-person limit refused them, and which (e.g. "went past 5 messages a minute per
    # person (Support)").
    limited_at: datetime | None = None
    limited_note: str | None = None


class InboxItem(BaseModel):
    id: str
    agent_id: str
    channel: str
    end_user: EndUserRef
    status: ConversationStatus
    title: str
    last_message_at: datetime | None
    message_count: int
    created_at: datetime
    taken_over_by: str | None


class InboxList(BaseModel):
    items: list[InboxItem]
    total: int


class InboxMessage(BaseModel):
    id: str
    seq: int
    role: MessageRole
    content: str
    created_at: datetime
    status: MessageStatus
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_micro_usd: int
    author_id: str | None  # the member who wrote a human message
    tool_calls: ToolCalls
    attachments: list[AttachmentOut] = Field(default_factory=list)


class InboxConversation(InboxItem):
    messages: list[InboxMessage]


class HumanReply(BaseModel):
    content: str = Field(min_length=1, max_length=4000)

    @field_validator("content")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reply is blank")
        return value


class EndUserOut(BaseModel):
    id: str
    channel: str
    display_name: str
    username: str | None
    blocked_at: datetime | None
