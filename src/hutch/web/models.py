"""Signed-in browser sessions of the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin


class WebSession(TimestampMixin, Base):
    """One browser's sign-in: the cookie holds a random token; only its hash is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", ondelete="SET NULL"))  # the org shown
    csrf_token: Mapped[str] = mapped_column(String(64))  # forms and scripts send it back with every change
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
