"""Every query on users, organisations, memberships, invitations and account tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import (
    EmailToken,
    EmailTokenPurpose,
    Invitation,
    Membership,
    Org,
    OrgRole,
    RefreshToken,
    User,
)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_email(self, email: str) -> User | None:
        return (await self.session.execute(select(User).where(User.email == email))).scalar_one_or_none()

    async def by_email_for_update(self, email: str) -> User | None:
        stmt = select(User).where(User.email == email).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_update(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id, with_for_update=True)

    async def platform_admin_count(self) -> int:
        stmt = select(func.count()).select_from(User).where(User.is_platform_admin.is_(True))
        return int(await self.session.scalar(stmt) or 0)


class OrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str) -> Org | None:
        return await self.session.get(Org, org_id)

    async def get_for_update(self, org_id: str) -> Org | None:
        return await self.session.get(Org, org_id, with_for_update=True)

    async def member_count(self, org_id: str) -> int:
        stmt = select(func.count()).select_from(Membership).where(Membership.org_id == org_id)
        return int((await self.session.execute(stmt)).scalar_one())


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

    async def members_of(self, org_id: str) -> list[tuple[User, Membership]]:
        stmt = (
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id)
            .order_by(Membership.created_at, User.id)
        )
        return [(user, membership) for user, membership in (await self.session.execute(stmt)).all()]

    async def get(self, org_id: str, user_id: str) -> Membership | None:
        return await self.session.get(Membership, (org_id, user_id))

    async def with_org(self, org_id: str, user_id: str) -> tuple[Membership, Org] | None:
        """The membership and its org in one round trip (authentication needs the org's suspension)."""
        stmt = (
            select(Membership, Org)
            .join(Org, Org.id == Membership.org_id)
            .where(Membership.org_id == org_id, Membership.user_id == user_id)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def role_of(self, org_id: str, user_id: str) -> OrgRole | None:
        stmt = select(Membership.role).where(Membership.org_id == org_id, Membership.user_id == user_id)
        return await self.session.scalar(stmt)

    async def lock_owners(self, org_id: str) -> list[str]:
        """Lock the org's owner rows; concurrent demotions and removals then see each other."""
        stmt = (
            select(Membership.user_id)
            .where(Membership.org_id == org_id, Membership.role == OrgRole.OWNER)
            .order_by(Membership.user_id)
            .with_for_update()
        )
        return list((await self.session.scalars(stmt)).all())

    async def first_org_id(self, user_id: str) -> str | None:
        stmt = (
            select(Membership.org_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Membership.org_id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def pending_in_org(self, org_id: str, now: datetime) -> list[Invitation]:
        stmt = (
            select(Invitation)
            .where(
                Invitation.org_id == org_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at.desc(), Invitation.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def get_in_org(self, org_id: str, invitation_id: str) -> Invitation | None:
        stmt = (
            select(Invitation)
            .where(Invitation.org_id == org_id, Invitation.id == invitation_id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_hash_for_update(self, token_hash: str) -> Invitation | None:
        stmt = select(Invitation).where(Invitation.token_hash == token_hash).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_pending_for(self, org_id: str, email: str, now: datetime) -> None:
        await self.session.execute(
            update(Invitation)
            .where(
                Invitation.org_id == org_id,
                Invitation.email == email,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )


class EmailTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash_for_update(self, token_hash: str, purpose: EmailTokenPurpose) -> EmailToken | None:
        stmt = (
            select(EmailToken)
            .where(EmailToken.token_hash == token_hash, EmailToken.purpose == purpose)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def use_up_unused(self, user_id: str, purpose: EmailTokenPurpose, now: datetime) -> None:
        """A newer link replaces older ones: only the latest email's link works."""
        await self.session.execute(
            update(EmailToken)
            .where(EmailToken.user_id == user_id, EmailToken.purpose == purpose, EmailToken.used_at.is_(None))
            .values(used_at=now)
        )


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

    async def revoke_all_of_user(self, user_id: str, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


async def lock_first_user_check(session: AsyncSession) -> bool:
    """Serialise signups for the "first user becomes platform admin" rule; True when no user exists yet."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('hutch.first_user'))"))
    return (await session.execute(select(User.id).limit(1))).first() is None
