"""Conversations, messages and the long-term memories agents keep about end users."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum

SEARCH_CONFIG = "simple"  # the text search configuration of ``Message.search``: a query must use the same
SEARCH_EXPRESSION = f"to_tsvector('{SEARCH_CONFIG}'::regconfig, content)"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    HUMAN = "human"  # a member of the org, answering in the agent's place (a takeover)


class ConversationStatus(StrEnum):
    """Who answers an open conversation; a closed one (``closed_at`` set) shows as ``closed``."""

    OPEN = "open"  # the agent
    NEEDS_HUMAN = "needs_human"  # the agent, until a member takes over: someone asked for a person
    TAKEN_OVER = "taken_over"  # a member (``taken_over_by``); the agent stays silent
    CLOSED = "closed"  # never stored: what a conversation with ``closed_at`` shows


class MessageStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the model could not answer; the stored content is the apology the user saw


class MemoryKind(StrEnum):
    FACT = "fact"  # something the agent chose to remember about the end user
    SUMMARY = "summary"  # older turns of a conversation, compacted


class Conversation(TimestampMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # One open conversation per agent, channel and end user; a reset closes it.
        Index(
            "uq_conversations_open",
            "agent_id",
            "channel",
            "end_user",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
        ),
        # Not on last_message_at: each message sets it, and an indexed column makes every such update
        # write a new entry into each of the table's indexes instead of updating the row in place (HOT).
        Index("ix_conversations_agent", "agent_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    end_user: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Returned by the statement that appends a message, so a turn knows who answers without a read.
    status: Mapped[ConversationStatus] = mapped_column(
        str_enum(ConversationStatus, "conversation_status"),
        default=ConversationStatus.OPEN,
        server_default=ConversationStatus.OPEN.value,
    )
    taken_over_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    taken_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    needs_human_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def shown_status(self) -> ConversationStatus:
        return ConversationStatus.CLOSED if self.closed_at is not None else self.status


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("uq_messages_conversation_seq", "conversation_id", "seq", unique=True),
        Index("ix_messages_created", "created_at"),
        # Full-text search of the inbox, on the stored ``search`` column: a phrase is checked against the
        # stored positions instead of each candidate's text parsed again.
        Index("ix_messages_search", "search", postgresql_using="gin"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The conversation's channel, copied so usage analytics count messages by channel without a join.
    channel: Mapped[str | None] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)  # order within the conversation
    role: Mapped[MessageRole] = mapped_column(str_enum(MessageRole, "message_role"))
    content: Mapped[str] = mapped_column(Text)
    # Tool calls made while producing this message: [{name, args, result}]
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    byok: Mapped[bool] = mapped_column(Boolean, default=False)  # answered with the org's own provider key
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus, "message_status"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    author_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # human's
    # The words of ``content`` for the inbox's search, kept by PostgreSQL (inserts never write it; nothing
    # loads it). 'simple' (no stemming) suits every language a channel brings.
    search: Mapped[str] = mapped_column(
        TSVECTOR, Computed(SEARCH_EXPRESSION, persisted=True), deferred=True, deferred_raiseload=True
    )


class EndUser(TimestampMixin, Base):
    """Someone who talks to an org's agents on one channel, as the channel knows them; ``external_id`` is
    the conversations' ``end_user``. Written when a conversation opens, never per message."""

    __tablename__ = "end_users"
    __table_args__ = (Index("uq_end_users_identity", "org_id", "channel", "external_id", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200))
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The last time the person went past an agent's per-person limit, and which one: shown in the inbox.
    limited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    limited_note: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))  # as the channel tells it (Telegram's)


class Memory(TimestampMixin, Base):
    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_agent_user", "agent_id", "end_user", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    end_user: Mapped[str] = mapped_column(String(200))
    kind: Mapped[MemoryKind] = mapped_column(str_enum(MemoryKind, "memory_kind"))
    content: Mapped[str] = mapped_column(Text)
    # For summaries: the conversation and the last message folded into it.
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    covers_until_seq: Mapped[int | None] = mapped_column(BigInteger)


class AttachmentKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"  # a voice note or an audio file: transcribed, the transcript is the message's text
    DOCUMENT = "document"  # a PDF or a text file: its text is read into the turn's prompt


class MessageAttachment(Base):
    """A file someone sent with a message (a photo, a voice note, a PDF), kept with the message: the bytes,
    and the text read from them (a voice note's transcript, a document's text)."""

    __tablename__ = "message_attachments"
    __table_args__ = (
        Index("ix_message_attachments_message", "message_id"),
        # Transcription minutes per org per month are summed over this.
        Index("ix_message_attachments_org_created", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[AttachmentKind] = mapped_column(str_enum(AttachmentKind, "attachment_kind"))
    content_type: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(300))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Loaded only when the file itself is asked for.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True, deferred_raiseload=True)
    text: Mapped[str | None] = mapped_column(Text)  # the transcript, or the document's text
    # Audio only: the seconds transcribed (metered against the plan's transcription minutes).
    duration_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2))
    transcribed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
