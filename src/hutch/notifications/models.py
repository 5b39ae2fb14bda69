"""The email outbox: every email is stored (body encrypted) before a job sends it, so none is lost."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin


class OutboundEmail(TimestampMixin, Base):
    __tablename__ = "outbound_emails"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # Bodies carry single-use links (verification, password reset, invitations): encrypted at rest.
    body_encrypted: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
