"""Every query on linked single sign-on identities (``sso_identities``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import SsoIdentity, SsoProvider, SsoUsedState


class SsoIdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hold_sign_up(self, provider: SsoProvider, subject: str, email: str) -> None:
        """Two first sign-ins of one person at once (two tabs) wait for each other until commit, so the
        second finds the account the first made instead of failing on the unique subject or email."""
        for key in (f"hutch.sso:{provider.value}:{subject}", f"hutch.signup:{email.lower()}"):
            await self.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))

    async def by_subject(self, provider: SsoProvider, subject: str) -> SsoIdentity | None:
        """The one way to find who signs in: the provider and its subject, never the email."""
        stmt = select(SsoIdentity).where(SsoIdentity.provider == provider, SsoIdentity.subject == subject)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_user(self, user_id: str) -> list[SsoIdentity]:
        stmt = (
            select(SsoIdentity)
            .where(SsoIdentity.user_id == user_id)
            .order_by(SsoIdentity.created_at, SsoIdentity.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def add(self, identity: SsoIdentity) -> SsoIdentity:
        self.session.add(identity)
        await self.session.flush()
        await self.session.refresh(identity)
        return identity

    async def delete(self, identity: SsoIdentity) -> None:
        await self.session.delete(identity)
        await self.session.flush()


class SsoStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def spend(self, state_hash: str, expires_at: datetime, now: datetime) -> bool:
        """Record a state as used; False when it already was (a replay). Forgets the states past use."""
        await self.session.execute(delete(SsoUsedState).where(SsoUsedState.expires_at < now))
        stmt = (
            insert(SsoUsedState)
            .values(state_hash=state_hash, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[SsoUsedState.state_hash])
            .returning(SsoUsedState.state_hash)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None
