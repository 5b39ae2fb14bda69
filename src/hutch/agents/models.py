"""Agents and the provider keys organisations bring."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class Audience(StrEnum):
    PERSONAL = "personal"  # the customer's own assistant; only their linked identities reach it
    PUBLIC = "public"  # talks to the customer's users


class Placement(StrEnum):
    SHARED = "shared"
    DEDICATED = "dedicated"


class AgentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class Agent(TimestampMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("org_id", "slug"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(64))
    system_prompt: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    fallback_model: Mapped[str | None] = mapped_column(String(200))
    temperature: Mapped[Decimal] = mapped_column(Numeric(3, 2))
    max_tokens: Mapped[int] = mapped_column(Integer)
    audience: Mapped[Audience] = mapped_column(str_enum(Audience, "agent_audience"))
    placement: Mapped[Placement] = mapped_column(str_enum(Placement, "agent_placement"))
    tools: Mapped[list[str]] = mapped_column(ARRAY(String(200)))  # built-in and connected tools' names
    status: Mapped[AgentStatus] = mapped_column(str_enum(AgentStatus, "agent_status"))
    # Set by the first document uploaded and never cleared: turns look for knowledge only after that, so
    # agents without documents (most) skip the search on every message.
    has_documents: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Fair use: what one person who is not a member may send the agent; None: the plan's default.
    end_user_messages_per_minute: Mapped[int | None] = mapped_column(Integer)
    end_user_messages_per_day: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ProviderKey(TimestampMixin, Base):
    """An organisation's own key for a model provider (BYOK); it wins over the platform's key."""

    __tablename__ = "provider_keys"
    __table_args__ = (UniqueConstraint("org_id", "provider"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    last4: Mapped[str] = mapped_column(String(4))
    base_url: Mapped[str | None] = mapped_column(String(500))


class AgentAvatar(Base):
    """An agent's picture, re-encoded from the upload (PNG, at most 512 px a side); kept in the database so
    every API process and worker can serve it."""

    __tablename__ = "agent_avatars"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
