"""Every query of data exports and deletions: the rows they track, what an export reads, what a deletion
reaches outside (bots, runtimes, the Stripe customer) and removes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, delete, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, OrgRole, User
from hutch.accounts.repository import MembershipRepository
from hutch.agents.models import Agent
from hutch.billing.models import Balance, BillingAccount, LedgerEntry
from hutch.channels.models import Channel, ChannelType
from hutch.conversations.models import Conversation, Memory, Message
from hutch.deletion.models import DataExport, Deletion, DeletionStatus, Subject
from hutch.knowledge.models import Chunk, Document
from hutch.runtimes.models import Runtime


class DataRequestRepository:
    """The export and deletion rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def export_of_user(self, user_id: str, export_id: str) -> DataExport | None:
        """The user's own export: another user's id answers None (a 404)."""
        stmt = select(DataExport).where(DataExport.id == export_id, DataExport.user_id == user_id)
        return await self.session.scalar(stmt)

    async def export(self, export_id: str, *, lock: bool = False) -> DataExport | None:
        return await self.session.get(DataExport, export_id, with_for_update=lock or None)

    async def exports_of_user(self, user_id: str, limit: int) -> list[DataExport]:
        """The exports the user may download, newest first."""
        stmt = (
            select(DataExport)
            .where(DataExport.user_id == user_id)
            .order_by(DataExport.created_at.desc(), DataExport.id.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def expired_exports(self, now: datetime) -> Sequence[DataExport]:
        stmt = select(DataExport).where(DataExport.expires_at <= now).with_for_update(skip_locked=True)
        return (await self.session.scalars(stmt)).all()

    async def deletion(self, deletion_id: str, *, lock: bool = False) -> Deletion | None:
        return await self.session.get(Deletion, deletion_id, with_for_update=lock or None)

    async def unfinished_deletion_of(self, subject: Subject, subject_id: str) -> Deletion | None:
        stmt = select(Deletion).where(
            Deletion.subject == subject,
            Deletion.subject_id == subject_id,
            Deletion.status != DeletionStatus.DONE,
        )
        return await self.session.scalar(stmt.limit(1))

    async def deletions(self, skip: int, limit: int) -> tuple[list[Deletion], int]:
        total = int(await self.session.scalar(select(func.count()).select_from(Deletion)) or 0)
        stmt = (
            select(Deletion)
            .order_by(Deletion.created_at.desc(), Deletion.id.desc())
            .offset(skip)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all()), total


class ExportReads:
    """What an export holds, read org by org (every read filters by the org's id)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def org(self, org_id: str) -> Org | None:
        return await self.session.get(Org, org_id)

    async def memberships_of(self, user_id: str) -> list[tuple[Org, Membership]]:
        return await MembershipRepository(self.session).orgs_of(user_id)

    async def members_of(self, org_id: str) -> list[tuple[User, Membership]]:
        return await MembershipRepository(self.session).members_of(org_id)

    async def agents(self, org_id: str) -> Sequence[Agent]:
        stmt = select(Agent).where(Agent.org_id == org_id).order_by(Agent.created_at, Agent.id)
        return (await self.session.scalars(stmt)).all()

    async def channels(self, org_id: str) -> Sequence[Channel]:
        stmt = select(Channel).where(Channel.org_id == org_id).order_by(Channel.created_at, Channel.id)
        return (await self.session.scalars(stmt)).all()

    async def documents(self, org_id: str) -> list[tuple[Document, str]]:
        """Each document with its text, put back together from its chunks."""
        text = (
            select(func.string_agg(Chunk.text, aggregate_order_by(literal("\n\n"), Chunk.position)))
            .where(Chunk.document_id == Document.id)
            .correlate(Document)
            .scalar_subquery()
        )
        stmt = (
            select(Document, text).where(Document.org_id == org_id).order_by(Document.created_at, Document.id)
        )
        return [(d, t or "") for d, t in (await self.session.execute(stmt)).all()]

    async def conversations(self, org_id: str) -> Sequence[Conversation]:
        stmt = (
            select(Conversation)
            .where(Conversation.org_id == org_id)
            .order_by(Conversation.created_at, Conversation.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def messages(self, org_id: str) -> Sequence[Message]:
        stmt = select(Message).where(Message.org_id == org_id).order_by(Message.conversation_id, Message.seq)
        return (await self.session.scalars(stmt)).all()

    async def memories(self, org_id: str) -> Sequence[Memory]:
        stmt = select(Memory).where(Memory.org_id == org_id).order_by(Memory.created_at, Memory.id)
        return (await self.session.scalars(stmt)).all()

    async def ledger(self, org_id: str) -> Sequence[LedgerEntry]:
        stmt = select(LedgerEntry).where(LedgerEntry.org_id == org_id).order_by(LedgerEntry.created_at)
        return (await self.session.scalars(stmt)).all()

    async def balances(self, org_id: str) -> Sequence[Balance]:
        return (await self.session.scalars(select(Balance).where(Balance.org_id == org_id))).all()


@dataclass(frozen=True)
class OrgAtStake:
    """An organisation a deletion would remove, and how much goes with it."""

    id: str
    name: str
    agents: int
    conversations: int
    documents: int
    telegram_bots: int
    runtimes: int
    stripe_customer: bool


class DeletionReads:
    """What a deletion reaches outside Hutch and what it removes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def telegram_bots(self, org_id: str) -> Sequence[Channel]:
        stmt = select(Channel).where(
            Channel.org_id == org_id,
            Channel.type == ChannelType.TELEGRAM,
            Channel.token_encrypted.is_not(None),
        )
        return (await self.session.scalars(stmt)).all()

    async def runtimes(self, org_id: str) -> Sequence[Runtime]:
        stmt = select(Runtime).where(Runtime.org_id == org_id).with_for_update()
        return (await self.session.scalars(stmt)).all()

    async def billing_account(self, org_id: str) -> BillingAccount | None:
        return await self.session.get(BillingAccount, org_id)

    async def orgs_owned_alone(self, user_id: str) -> list[str]:
        """The orgs where ``user_id`` is the only owner: they go with the user's account."""
        owners = (
            select(func.count())
            .where(Membership.org_id == Org.id, Membership.role == OrgRole.OWNER)
            .correlate(Org)
            .scalar_subquery()
        )
        stmt = (
            select(Org.id)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id, Membership.role == OrgRole.OWNER, owners == 1)
            .order_by(Org.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def members_only_here(self, org_id: str) -> list[str]:
        """Members of the org who belong to no other org and are not platform admins."""
        elsewhere = (
            select(func.count())
            .select_from(Membership)
            .where(Membership.user_id == User.id, Membership.org_id != org_id)
            .correlate(User)
            .scalar_subquery()
        )
        stmt = (
            select(User.id)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.is_platform_admin.is_(False), elsewhere == 0)
        )
        return list((await self.session.scalars(stmt)).all())

    async def platform_admin_count(self) -> int:
        stmt = select(func.count()).select_from(User).where(User.is_platform_admin.is_(True))
        return int(await self.session.scalar(stmt) or 0)

    async def delete_org(self, org_id: str) -> int:
        """The org's row; everything that belongs to it goes by the database's cascades."""
        result = await self.session.execute(delete(Org).where(Org.id == org_id))
        return int(result.rowcount)  # type: ignore[attr-defined]  # DML results carry rowcount

    async def delete_users(self, user_ids: list[str]) -> int:
        if not user_ids:
            return 0
        result = await self.session.execute(delete(User).where(User.id.in_(user_ids)))
        return int(result.rowcount)  # type: ignore[attr-defined]  # DML results carry rowcount

    async def orgs_at_stake(self, org_ids: list[str]) -> list[OrgAtStake]:
        """Each organisation with the counts of what belongs to it, in one round trip."""
        if not org_ids:
            return []

        def count(model: Any, *where: ColumnElement[bool]) -> ScalarSelect[int]:
            return (
                select(func.count())
                .select_from(model)
                .where(model.org_id == Org.id, *where)
                .correlate(Org)
                .scalar_subquery()
            )

        customer = (
            select(func.count())
            .where(BillingAccount.org_id == Org.id, BillingAccount.stripe_customer_id.is_not(None))
            .correlate(Org)
            .scalar_subquery()
        )
        stmt = (
            select(
                Org.id,
                Org.name,
                count(Agent),
                count(Conversation),
                count(Document),
                count(Channel, Channel.type == ChannelType.TELEGRAM, Channel.token_encrypted.is_not(None)),
                count(Runtime),
                customer,
            )
            .where(Org.id.in_(org_ids))
            .order_by(Org.name, Org.id)
        )
        return [
            OrgAtStake(i, n, int(a), int(c), int(d), int(t), int(r), bool(s))
            for i, n, a, c, d, t, r, s in (await self.session.execute(stmt)).all()
        ]

    async def emails_of(self, user_ids: list[str]) -> list[str]:
        if not user_ids:
            return []
        stmt = select(User.email).where(User.id.in_(user_ids)).order_by(User.email)
        return list((await self.session.scalars(stmt)).all())

    async def emails_staying(self, org_id: str, leaving: list[str]) -> list[str]:
        """Members of the org who are kept (in another org, or platform admins)."""
        stmt = (
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id, User.id.not_in(leaving))
            .order_by(User.email)
        )
        return list((await self.session.scalars(stmt)).all())
