"""A screenshot of an agent's browser after one of its actions: kept for the message's tool call, the
task's step and the live view. The image itself lives in the screenshot store (files or a bucket). And the
browsers an org has open, counted across every process against its plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base


class Screenshot(Base):
    __tablename__ = "browser_screenshots"
    __table_args__ = (
        Index("ix_browser_screenshots_task", "task_id", "created_at"),
        Index("ix_browser_screenshots_org_created", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    # What the browser worked for: a conversation's turn, or a task's step (numbered from 1).
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    step: Mapped[int | None] = mapped_column(Integer)
    tool_call_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    page_url: Mapped[str] = mapped_column(Text)
    storage_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BrowserLease(Base):
    """A browser session an org has open in some process of the deployment, counted against the plan's
    ``browsers`` (``hutch.browser.leases``); renewed by each action, it lapses when the session would
    have closed for being idle."""

    __tablename__ = "browser_leases"

    session_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
