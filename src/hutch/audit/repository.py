"""Every query on the audit log."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.audit.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, *, skip: int, limit: int, org_id: str | None, action: str | None
    ) -> tuple[list[AuditEntry], int]:
        stmt = select(AuditEntry)
        if org_id is not None:
            stmt = stmt.where(AuditEntry.org_id == org_id)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        total = int(
            (await self.session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
        )
        rows = await self.session.scalars(
            stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset(skip).limit(limit)
        )
        return list(rows.all()), total
