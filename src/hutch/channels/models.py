"""Channels bind an agent to an outside messenger; every inbound event passes through one inbox table."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class ChannelType(StrEnum):
    TELEGRAM = "telegram"  # the agent's own bot
    WEBCHAT = "webchat"  # the chat widget on the customer's site


class ChannelStatus(StrEnum):
    ACTIVE = "active"
    ERROR = "error"  # the last delivery failed for a reason the customer must fix (token revoked)
    UNVERIFIED = "unverified"  # a bot the factory made: it waits for its owner's verification code


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
    # Telegram: the bot's user id; web chat: the public token the widget snippet carries.
    external_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(64))  # the bot's @username
    token_encrypted: Mapped[str | None] = mapped_column(Text)  # the bot token
    webhook_secret_hash: Mapped[str | None] = mapped_column(
        String(64)
    )  # sha256 of the secret Telegram echoes
    # Web chat: the sites (scheme://host[:port]) whose pages may embed the widget.
    allowed_origins: Mapped[list[str]] = mapped_column(
        ARRAY(String(255)), default=list, server_default=text("'{}'")
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    # Telegram: the user id of a factory-made bot's verified owner (or of whoever created a managed bot);
    # a personal agent answers only them.
    owner_external_id: Mapped[str | None] = mapped_column(String(64))
    # Telegram: a managed bot, created by its owner through the platform bot, which can fetch its token.
    managed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


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
    channel: Mapped[str] = mapped_column(String(16))  # whatsapp | telegram
    # E.164 for WhatsApp; the chat id for Telegram (empty until the user opens the deep link).
    address: Mapped[str] = mapped_column(String(64))
    expected_username: Mapped[str | None] = mapped_column(String(64))  # Telegram: only this user may link
    status: Mapped[LinkStatus] = mapped_column(str_enum(LinkStatus, "link_status"))
    code_hash: Mapped[str] = mapped_column(String(64))
    code_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # opens the 24 h window


class ManagedBotStatus(StrEnum):
    WAITING = "waiting"  # the deep link was handed out; nobody opened it yet
    OPENED = "opened"  # a Telegram user opened it and was shown the button that creates the bot
    CONNECTED = "connected"  # the bot was created and connected to the agent
    FAILED = "failed"  # the bot was created but could not be connected (the reason is kept)


class ManagedBotRequest(TimestampMixin, Base):
    """An org member's request for a managed Telegram bot for an agent, through the platform bot.

    The deep link's code works once, until it expires: whoever opens it first is the only Telegram user
    whose new bot is connected, and becomes its verified owner."""

    __tablename__ = "managed_bot_requests"
    __table_args__ = (
        Index("uq_managed_bot_requests_code", "code_hash", unique=True),
        Index("ix_managed_bot_requests_telegram_user", "telegram_user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # the member who asked
    status: Mapped[ManagedBotStatus] = mapped_column(str_enum(ManagedBotStatus, "managed_bot_status"))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    button_id: Mapped[int] = mapped_column(Integer)  # the keyboard button's request_id (signed 32-bit)
    suggested_username: Mapped[str] = mapped_column(String(64))
    telegram_user_id: Mapped[str | None] = mapped_column(String(32))  # who opened the link
    chat_id: Mapped[str | None] = mapped_column(String(32))  # their chat with the platform bot
    channel_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    bot_username: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# An inbound event's outcome while its answer is being sent (``channels.inbound.sending``).
SENDING = "sending"


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
    # The message the event's turn stored (committed with it), so a retry resumes that turn.
    turn_message_id: Mapped[str | None] = mapped_column(String(32))


class ChannelUsageDaily(Base):
    """Messages in and out per agent, channel and UTC day: the channel's traffic, whoever pays for it."""

    __tablename__ = "channel_usage_daily"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # telegram | whatsapp | webchat
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    inbound: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    outbound: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
