"""Every query on the email outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.notifications.models import OutboundEmail


class OutboundEmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, email: OutboundEmail) -> None:
        self.session.add(email)

    async def get_for_update(self, email_id: str) -> OutboundEmail | None:
        stmt = select(OutboundEmail).where(OutboundEmail.id == email_id).with_for_update(skip_locked=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()
