"""Every query on the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import User
from hutch.audit.models import AuditEntry
from hutch.core.errors import BadRequest


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show; every field left None shows all."""

    org_id: str | None = None
    action: str | None = None
    actor: str | None = None  # the acting user's id, or their email
    since: datetime | None = None  # included
    until: datetime | None = None  # excluded


def day_range(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days, both included."""
    if start is not None and end is not None and end < start:
        raise BadRequest("to must be on or after from.")
    since = datetime.combine(start, time.min, UTC) if start else None
    until = datetime.combine(end + timedelta(days=1), time.min, UTC) if end else None
    return since, until


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, where: AuditFilter, *, skip: int, limit: int) -> tuple[list[AuditEntry], int]:
        stmt = select(AuditEntry)
        if where.org_id is not None:
            stmt = stmt.where(AuditEntry.org_id == where.org_id)
        if where.action is not None:
            stmt = stmt.where(AuditEntry.action == where.action)
        if where.actor is not None:
            actor = where.actor.strip()
            if "@" in actor:
                by_email = select(User.id).where(User.email == actor.lower()).scalar_subquery()
                stmt = stmt.where(AuditEntry.actor_user_id == by_email)
            else:
                stmt = stmt.where(AuditEntry.actor_user_id == actor)
        if where.since is not None:
            stmt = stmt.where(AuditEntry.at >= where.since)
        if where.until is not None:
            stmt = stmt.where(AuditEntry.at < where.until)
        total = int(
            (await self.session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
        )
        rows = await self.session.scalars(
            stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset(skip).limit(limit)
        )
        return list(rows.all()), total

    async def actions(self) -> list[str]:
        """Every action the log holds, for a filter's choices."""
        stmt = select(AuditEntry.action).distinct().order_by(AuditEntry.action)
        return list((await self.session.scalars(stmt)).all())
