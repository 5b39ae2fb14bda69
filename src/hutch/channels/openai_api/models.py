"""A response of the Responses API that the caller asked to keep (``store``, the default): what continues it
(``previous_response_id``) and what ``GET /v1/responses/{id}`` shows."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class ResponseStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"  # the agent's model did not answer; the caller got a 502


class StoredResponse(TimestampMixin, Base):
    __tablename__ = "api_responses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    # The response this one continues; not a foreign key: deleting a response leaves its followers readable.
    previous_id: Mapped[str | None] = mapped_column(String(32))
    # Where the exchange is kept (the inbox shows it); messages of a tool round trip are not stored there.
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    user_message_id: Mapped[str | None] = mapped_column(String(32))
    assistant_message_id: Mapped[str | None] = mapped_column(String(32))
    end_user: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(200))  # as the caller named the agent
    status: Mapped[ResponseStatus] = mapped_column(str_enum(ResponseStatus, "api_response_status"))
    instructions: Mapped[str | None] = mapped_column(Text)
    # The Responses API's own items: the caller's new input, then what the agent answered. A chain of them is
    # the history the next response is asked with (tool calls and their results included).
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    output_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    usage: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # ``metadata`` is taken by SQLAlchemy's declarative classes.
    caller_metadata: Mapped[dict[str, str]] = mapped_column("metadata", JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
