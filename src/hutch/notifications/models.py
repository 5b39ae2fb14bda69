"""The email outbox (every email stored, body encrypted, before a job sends it), people's notification
preferences, and the record of notifications sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin
from hutch.i18n import N_


class NoticeKind(StrEnum):
    """The notices whose ways a person chooses one by one."""

    LOW_BALANCE = "low_balance"
    PAYMENT_FAILED = "payment_failed"
    QUOTA = "quota"  # the month's messages 80% used, or all used
    NEEDS_HUMAN = "needs_human"  # a conversation asks for a person

    @property
    def label(self) -> str:
        return NOTICE_LABELS[self]

    @classmethod
    def of(cls, kind: str) -> NoticeKind | None:
        """The choosable kind a sent notice's kind belongs to (``quota_80`` is ``quota``), if any."""
        base = kind.split("_")[0] if kind.startswith("quota_") else kind
        try:
            return cls(base)
        except ValueError:
            return None


NOTICE_LABELS = {  # translated where shown
    NoticeKind.LOW_BALANCE: N_("Prepaid credits running low"),
    NoticeKind.PAYMENT_FAILED: N_("A payment failed"),
    NoticeKind.QUOTA: N_("The plan's monthly messages nearly or all used"),
    NoticeKind.NEEDS_HUMAN: N_("A conversation needs a person"),
}


class OutboundEmail(TimestampMixin, Base):
    __tablename__ = "outbound_emails"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # Bodies carry single-use links (verification, password reset, invitations): encrypted at rest.
    body_encrypted: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    language: Mapped[str | None] = mapped_column(String(16))  # the body's: its signature and HTML follow it


class NotificationPreference(Base):
    """How a person wants to hear from Hutch about their organisation; no row means both ways."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    chat: Mapped[bool] = mapped_column(Boolean, default=True)  # their linked Telegram or WhatsApp chat


class NotificationChoice(Base):
    """Which ways a person wants one kind of notice (see ``NoticeKind``); no row means their general
    preference above: email as chosen there, Telegram and WhatsApp as its ``chat``."""

    __tablename__ = "notification_choices"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # a NoticeKind
    email: Mapped[bool] = mapped_column(Boolean)
    telegram: Mapped[bool] = mapped_column(Boolean)
    whatsapp: Mapped[bool] = mapped_column(Boolean)


class SentNotification(Base):
    """What was sent to whom, by which way: the record customers and support can read."""

    __tablename__ = "sent_notifications"
    __table_args__ = (Index("ix_sent_notifications_user_sent", "user_id", "sent_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))  # runtime_ready, low_balance, payment_failed, quota_80, ...
    channel: Mapped[str] = mapped_column(String(16))  # email | telegram | whatsapp
    summary: Mapped[str] = mapped_column(String(300))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
