"""Every query on the email outbox, people's notification preferences and the record of notices sent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, OrgRole, User
from hutch.notifications.models import NotificationPreference, OutboundEmail, SentNotification

# (user id, email, wants email, wants chat): the preferences are None when the person never chose.
OwnerRow = tuple[str, str, bool | None, bool | None]


class OutboundEmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, email: OutboundEmail) -> None:
        self.session.add(email)

    async def get_for_update(self, email_id: str) -> OutboundEmail | None:
        stmt = select(OutboundEmail).where(OutboundEmail.id == email_id).with_for_update(skip_locked=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def owners_with_preferences(self, org_id: str) -> list[OwnerRow]:
        """The org's owners, by email, with how they chose to hear from Hutch."""
        rows = await self.session.execute(
            select(User.id, User.email, NotificationPreference.email, NotificationPreference.chat)
            .join(Membership, Membership.user_id == User.id)
            .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
            .where(Membership.org_id == org_id, Membership.role == OrgRole.OWNER)
            .order_by(User.email)
        )
        return [(uid, email, wants_email, wants_chat) for uid, email, wants_email, wants_chat in rows.all()]

    async def preference_of(self, user_id: str, *, for_update: bool = False) -> NotificationPreference | None:
        return await self.session.get(NotificationPreference, user_id, with_for_update=for_update)

    def add_preference(self, preference: NotificationPreference) -> None:
        self.session.add(preference)

    def add_sent(self, sent: SentNotification) -> None:
        self.session.add(sent)

    async def sent_to(self, user_id: str, limit: int) -> list[SentNotification]:
        """The notices sent to a person, newest first."""
        rows = await self.session.scalars(
            select(SentNotification)
            .where(SentNotification.user_id == user_id)
            .order_by(SentNotification.sent_at.desc(), SentNotification.id)
            .limit(limit)
        )
        return list(rows.all())
