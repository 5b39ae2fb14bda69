"""Every query on the email outbox, people's notification preferences and the record of notices sent."""

from __future__ import annotations

from sqlalchemy import and_, delete, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, OrgRole, User
from hutch.notifications.models import (
    NotificationChoice,
    NotificationPreference,
    OutboundEmail,
    SentNotification,
)

# (user id, email, wants email, wants chat, and for the notice's kind: email, telegram, whatsapp; then their
# language): each is None when the person never chose.
OwnerRow = tuple[str, str, bool | None, bool | None, bool | None, bool | None, bool | None, str | None]


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

    async def owners_with_preferences(
        self, org_id: str, kind: str | None = None, *, every_member: bool = False
    ) -> list[OwnerRow]:
        """The org's owners (or, with ``every_member``, all its members), by email, with how they chose to
        hear from Hutch (in general, and about notices of ``kind``)."""
        choice = and_(NotificationChoice.user_id == User.id, NotificationChoice.kind == (kind or ""))
        rows = await self.session.execute(
            select(
                User.id,
                User.email,
                NotificationPreference.email,
                NotificationPreference.chat,
                NotificationChoice.email,
                NotificationChoice.telegram,
                NotificationChoice.whatsapp,
                User.language,
            )
            .join(Membership, Membership.user_id == User.id)
            .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
            .outerjoin(NotificationChoice, choice)
            .where(Membership.org_id == org_id, true() if every_member else Membership.role == OrgRole.OWNER)
            .order_by(User.email)
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]  # a Row is the tuple it holds

    async def preference_of(self, user_id: str, *, for_update: bool = False) -> NotificationPreference | None:
        return await self.session.get(NotificationPreference, user_id, with_for_update=for_update)

    def add_preference(self, preference: NotificationPreference) -> None:
        self.session.add(preference)

    async def choices_of(self, user_id: str) -> list[NotificationChoice]:
        rows = await self.session.scalars(
            select(NotificationChoice).where(NotificationChoice.user_id == user_id)
        )
        return list(rows.all())

    async def replace_choices(self, user_id: str, choices: list[NotificationChoice]) -> None:
        """The person's choices per kind become exactly ``choices``."""
        await self.session.execute(delete(NotificationChoice).where(NotificationChoice.user_id == user_id))
        self.session.add_all(choices)
        await self.session.flush()

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
