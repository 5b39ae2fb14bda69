"""Every query on users, organisations, memberships and account tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, RefreshToken, User


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


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash_for_update(self, token_hash: str) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


async def lock_first_user_check(session: AsyncSession) -> bool:
    """Serialise signups for the "first user becomes platform admin" rule; True when no user exists yet."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('hutch.first_user'))"))
    return (await session.execute(select(User.id).limit(1))).first() is None
