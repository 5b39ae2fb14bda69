"""Alerts for the platform's admins: raised by any part of Hutch, de-duplicated while unacknowledged."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, str_enum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One open alert per situation: raising it again counts an occurrence instead of a new row.
        Index(
            "uq_alerts_open_key", "dedup_key", unique=True, postgresql_where=text("acknowledged_at IS NULL")
        ),
        Index("ix_alerts_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # e.g. runtime_capacity, runtime_error
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "alert_severity"))
    subject: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(255))
    org_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
