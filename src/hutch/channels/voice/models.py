"""A voice session: one LiveKit room, one person, charged by the second once it ends."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class VoiceStatus(StrEnum):
    ISSUED = "issued"  # a token was handed out; nobody joined yet
    ACTIVE = "active"  # the person is in the room: the clock runs
    ENDED = "ended"


class VoiceSession(TimestampMixin, Base):
    __tablename__ = "voice_sessions"
    __table_args__ = (
        Index("ix_voice_sessions_org_created", "org_id", "created_at"),
        Index("ix_voice_sessions_open", "status", postgresql_where=text("status <> 'ended'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    identity: Mapped[str] = mapped_column(String(100))  # the person's LiveKit identity
    room: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[VoiceStatus] = mapped_column(str_enum(VoiceStatus, "voice_status"))
    untracked: Mapped[bool] = mapped_column(Boolean, default=False)  # the plan includes unlimited voice
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the token's end
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last sign of the room
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(100))
    seconds: Mapped[int] = mapped_column(Integer, default=0)  # how long the person was in the room
    charged_seconds: Mapped[int] = mapped_column(Integer, default=0)  # drawn from the time balance
