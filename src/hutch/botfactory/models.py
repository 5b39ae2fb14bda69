"""The bot factory's tables: the operator's creator accounts, bot requests, and ownership checks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class AccountStatus(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"  # restricted by Telegram (spam limits) or full: skipped until an admin reactivates it
    BANNED = "banned"  # deactivated by Telegram
    UNKNOWN = "unknown"  # not checked yet, or the last check could not reach Telegram


class CreatorAccount(TimestampMixin, Base):
    """A Telegram user account the operator owns, which asks @BotFather for bots on customers' behalf."""

    __tablename__ = "creator_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    api_id: Mapped[int] = mapped_column(Integer)
    api_hash_encrypted: Mapped[str] = mapped_column(Text)
    session_encrypted: Mapped[str] = mapped_column(Text)  # Telethon's StringSession: a logged-in device
    status: Mapped[AccountStatus] = mapped_column(str_enum(AccountStatus, "creator_account_status"))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher is used first
    daily_cap: Mapped[int] = mapped_column(Integer, default=5)  # bots a day; BotFather grows wary beyond
    created_bots: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # BotFather said "try again in N seconds": the account rests until then.
    resting_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while a creation uses the account (one BotFather conversation at a time); expires by itself so
    # a worker that died mid-conversation does not hold the account forever.
    busy_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RequestStatus(StrEnum):
    QUEUED = "queued"
    CREATING = "creating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BotRequest(TimestampMixin, Base):
    """A customer's request for a new bot for an agent, carried out by a job."""

    __tablename__ = "bot_requests"
    __table_args__ = (
        # One request in flight per agent: a second click waits for the first.
        Index(
            "uq_bot_requests_agent_open",
            "agent_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'creating')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "bot_request_status"))
    bot_name: Mapped[str] = mapped_column(String(64))  # the display name asked for
    username_base: Mapped[str] = mapped_column(String(64))  # what usernames are generated from
    bot_username: Mapped[str | None] = mapped_column(String(64))
    # Kept from BotFather's answer until the channel holds it, so a retried job never makes a second bot.
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("creator_accounts.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)  # why it failed, in words for the customer
    notes: Mapped[str | None] = mapped_column(Text)  # what went wrong on the way (for admins)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BotVerification(TimestampMixin, Base):
    """The code that proves who owns a factory-made bot: whoever sends it to the bot becomes its owner."""

    __tablename__ = "bot_verifications"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    code_encrypted: Mapped[str] = mapped_column(Text)  # shown to the org's members until it is used
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_telegram_id: Mapped[str | None] = mapped_column(String(32))
    owner_username: Mapped[str | None] = mapped_column(String(64))
