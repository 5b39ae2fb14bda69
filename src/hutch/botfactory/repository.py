"""Every query on the bot factory's creator accounts and bot requests."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.botfactory.models import AccountStatus, BotRequest, CreatorAccount, RequestStatus
from hutch.channels.models import Channel, ChannelType


class CreatorAccountRepository:
    """The operator's pool: no organisation owns it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, account: CreatorAccount) -> None:
        self.session.add(account)

    async def delete(self, account: CreatorAccount) -> None:
        await self.session.delete(account)

    async def get(self, account_id: str, *, for_update: bool = False) -> CreatorAccount | None:
        return await self.session.get(CreatorAccount, account_id, with_for_update=for_update)

    async def has_phone(self, phone: str) -> bool:
        return bool(await self.session.scalar(select(CreatorAccount.id).where(CreatorAccount.phone == phone)))

    async def all(self) -> list[CreatorAccount]:
        """Highest priority first, then the oldest."""
        stmt = select(CreatorAccount).order_by(CreatorAccount.priority.desc(), CreatorAccount.created_at)
        return list((await self.session.scalars(stmt)).all())

    async def made_since(self, since: datetime) -> dict[str, int]:
        """Bots each account made since ``since``."""
        stmt = (
            select(BotRequest.account_id, func.count())
            .where(
                BotRequest.status == RequestStatus.SUCCEEDED,
                BotRequest.finished_at >= since,
                BotRequest.account_id.is_not(None),
            )
            .group_by(BotRequest.account_id)
        )
        return {str(account_id): int(n) for account_id, n in (await self.session.execute(stmt)).all()}

    async def best_available_for_update(
        self, now: datetime, day_start: datetime, exclude: Collection[str]
    ) -> CreatorAccount | None:
        """The best account free at ``now`` and under its daily cap since ``day_start``, locked; accounts
        another worker holds are skipped."""
        made = (
            select(func.count())
            .where(
                BotRequest.account_id == CreatorAccount.id,
                BotRequest.status == RequestStatus.SUCCEEDED,
                BotRequest.finished_at >= day_start,
            )
            .correlate(CreatorAccount)
            .scalar_subquery()
        )
        # UNKNOWN accounts were just added or could not be checked: they are tried after the active ones.
        stmt = (
            select(CreatorAccount)
            .where(
                CreatorAccount.status.in_([AccountStatus.ACTIVE, AccountStatus.UNKNOWN]),
                or_(CreatorAccount.resting_until.is_(None), CreatorAccount.resting_until <= now),
                or_(CreatorAccount.busy_until.is_(None), CreatorAccount.busy_until <= now),
                made < CreatorAccount.daily_cap,
                CreatorAccount.id.not_in(exclude),
            )
            .order_by(
                (CreatorAccount.status == AccountStatus.ACTIVE).desc(),
                CreatorAccount.priority.desc(),
                CreatorAccount.last_used_at.asc().nulls_first(),
                CreatorAccount.id,
            )
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return await self.session.scalar(stmt)

    async def usable_count(self) -> int:
        stmt = select(func.count()).where(
            CreatorAccount.status.in_([AccountStatus.ACTIVE, AccountStatus.UNKNOWN])
        )
        return int(await self.session.scalar(stmt) or 0)


class BotRequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, request: BotRequest) -> None:
        self.session.add(request)

    async def agent_has_bot(self, agent_id: str) -> bool:
        """Whether a Telegram bot already serves the agent."""
        has_bot = await self.session.scalar(
            select(Channel.id).where(Channel.agent_id == agent_id, Channel.type == ChannelType.TELEGRAM)
        )
        return has_bot is not None

    async def open_for_agent(self, agent_id: str) -> str | None:
        """The id of the agent's request still queued or being carried out."""
        return await self.session.scalar(
            select(BotRequest.id).where(
                BotRequest.agent_id == agent_id,
                BotRequest.status.in_([RequestStatus.QUEUED, RequestStatus.CREATING]),
            )
        )

    async def latest_for_agent(self, agent_id: str) -> BotRequest | None:
        return await self.session.scalar(
            select(BotRequest)
            .where(BotRequest.agent_id == agent_id)
            .order_by(BotRequest.created_at.desc(), BotRequest.id.desc())
            .limit(1)
        )
