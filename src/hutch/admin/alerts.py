"""Raising an alert for the platform's admins, once per situation until someone acknowledges it."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.admin.models import Alert, Severity
from hutch.core.ids import new_id


async def raise_alert(
    session: AsyncSession,
    kind: str,
    severity: Severity,
    subject: str,
    message: str,
    *,
    dedup_key: str | None = None,
    org_id: str | None = None,
) -> None:
    """Record an alert; while an alert with the same key is unacknowledged, count one more occurrence."""
    stmt = insert(Alert).values(
        id=new_id("alr"),
        kind=kind,
        severity=severity,
        subject=subject[:200],
        message=message,
        dedup_key=dedup_key or kind,
        org_id=org_id,
        occurrences=1,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Alert.dedup_key],
            index_where=text("acknowledged_at IS NULL"),
            set_={
                "occurrences": Alert.occurrences + 1,
                "last_seen_at": func.now(),
                "message": stmt.excluded.message,
            },
        )
    )
