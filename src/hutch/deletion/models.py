"""Data exports (a ZIP of JSON files) and deletions of an organisation or a user, each run by a job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class Subject(StrEnum):
    ORG = "org"
    USER = "user"


class ExportStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DeletionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # a step failed; the job retries, and an admin may retry it later


class DataExport(TimestampMixin, Base):
    """An export of a user's or an organisation's data; only ``user_id`` may download it, until it expires."""

    __tablename__ = "data_exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )  # who asked for it and may download it
    subject: Mapped[Subject] = mapped_column(str_enum(Subject, "data_subject"))
    subject_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[ExportStatus] = mapped_column(str_enum(ExportStatus, "export_status"))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Deletion(TimestampMixin, Base):
    """The deletion of an organisation or a user for good, step by step; ``report`` says what each did."""

    __tablename__ = "deletions"
    __table_args__ = (Index("ix_deletions_subject", "subject", "subject_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[Subject] = mapped_column(str_enum(Subject, "data_subject"))
    subject_id: Mapped[str] = mapped_column(String(32))
    subject_label: Mapped[str] = mapped_column(String(320), default="")  # a name or email, kept for the log
    requested_by_user_id: Mapped[str | None] = mapped_column(String(32))  # kept after the user is gone
    status: Mapped[DeletionStatus] = mapped_column(str_enum(DeletionStatus, "deletion_status"))
    export_id: Mapped[str | None] = mapped_column(String(32))
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # step → what it did
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
