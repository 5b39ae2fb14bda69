"""Every query on users, organisations, memberships and account tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_email(self, email: str) -> User | None:
        return (await self.session.execute(select(User).where(User.email == email))).scalar_one_or_none()


class MembershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def orgs_of(self, user_id: str) -> list[tuple[Org, Membership]]:
        """The user's organisations, oldest membership first (the default org comes first)."""
        stmt = (
            select(Org, Membership)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Org.id)
        )
        return [(org, membership) for org, membership in (await self.session.execute(stmt)).all()]

    async def get(self, org_id: str, user_id: str) -> Membership | None:
        return await self.session.get(Membership, (org_id, user_id))

    async def first_org_id(self, user_id: str) -> str | None:
        stmt = (
            select(Membership.org_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Membership.org_id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
