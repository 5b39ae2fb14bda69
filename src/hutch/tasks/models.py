"""An agent's task: its plan, its progress, its result; a scheduled task makes a new run each time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    SCHEDULED = "scheduled"  # a recurring task: it spawns a run at each time of its schedule


FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED)


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_agent_created", "agent_id", "created_at"),
        Index("ix_tasks_due", "next_run_at", postgresql_where=text("status = 'scheduled'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"))
    # [{"title": ..., "done": bool, "output": str | None}], written by the planning job.
    plan: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(String(100))  # cron, for scheduled tasks
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
