"""Every query on alerts and on who they are delivered to. Alerts are the platform's, not an org's:
nothing here filters by tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import User
from hutch.alerts.models import Alert, Severity
from hutch.core.ids import new_id


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        kind: str,
        severity: Severity,
        subject: str,
        message: str,
        dedup_key: str,
        org_id: str | None,
    ) -> tuple[str, bool]:
        """Insert an alert, or, while one with the same key is unacknowledged, count one more occurrence of
        it: its id, and whether it is new."""
        stmt = insert(Alert).values(
            id=new_id("alr"),
            kind=kind,
            severity=severity,
            subject=subject,
            message=message,
            dedup_key=dedup_key,
            org_id=org_id,
            occurrences=1,
        )
        row: Any = (
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Alert.dedup_key],
                    index_where=text("acknowledged_at IS NULL"),
                    set_={
                        "occurrences": Alert.occurrences + 1,
                        "last_seen_at": func.now(),
                        "message": stmt.excluded.message,
                    },
                ).returning(Alert.id, literal_column("xmax = 0").label("inserted"))
            )
        ).one()
        return row.id, bool(row.inserted)

    async def admin_emails(self) -> list[str]:
        """The platform admins' email addresses, in order."""
        stmt = select(User.email).where(User.is_platform_admin.is_(True)).order_by(User.email)
        return list((await self.session.scalars(stmt)).all())
