"""Channels bind an agent to an outside messenger; every inbound event passes through one inbox table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class ChannelType(StrEnum):
    TELEGRAM = "telegram"


class ChannelStatus(StrEnum):
    ACTIVE = "active"
    ERROR = "error"  # the last delivery failed for a reason the customer must fix (token revoked)


class Channel(TimestampMixin, Base):
    __tablename__ = "channels"
    __table_args__ = (
        # One bot serves one agent: a second binding would steal the first one's webhook.
        Index("uq_channels_type_external", "type", "external_id", unique=True),
        Index("ix_channels_agent", "agent_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    type: Mapped[ChannelType] = mapped_column(str_enum(ChannelType, "channel_type"))
    status: Mapped[ChannelStatus] = mapped_column(str_enum(ChannelStatus, "channel_status"))
    external_id: Mapped[str] = mapped_column(String(64))  # the bot's Telegram user id
    username: Mapped[str] = mapped_column(String(64))  # the bot's @username
    token_encrypted: Mapped[str] = mapped_column(Text)
    webhook_secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the secret Telegram echoes
    last_error: Mapped[str | None] = mapped_column(Text)


class LinkStatus(StrEnum):
    PENDING = "pending"  # waiting for the user to send the code from that address
    ACTIVE = "active"


class ChannelLink(TimestampMixin, Base):
    """A person's own address on a shared channel (their WhatsApp number), routed to their personal agent.

    A link becomes active only when the code shown to the user arrives from that address, so nobody can
    route someone else's number to their agent."""

    __tablename__ = "channel_links"
    __table_args__ = (
        Index(
            "uq_channel_links_active_address",
            "channel",
            "address",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("uq_channel_links_code", "code_hash", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))  # whatsapp
    address: Mapped[str] = mapped_column(String(64))  # E.164 for WhatsApp
    status: Mapped[LinkStatus] = mapped_column(str_enum(LinkStatus, "link_status"))
    code_hash: Mapped[str] = mapped_column(String(64))
    code_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # opens the 24 h window


class ExternalEvent(Base):
    """Every inbound webhook event, stored before it is acknowledged and handled once."""

    __tablename__ = "external_events"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. telegram:<channel id>
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. the update_id
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)  # what was done, or why nothing could be
    reply: Mapped[str | None] = mapped_column(Text)  # the answer, kept so a retried send does not re-ask
