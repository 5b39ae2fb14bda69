"""Every query on requests for managed Telegram bots; an organisation's requests are picked by ``org_id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.models import Channel, ChannelType, ManagedBotRequest, ManagedBotStatus


class ManagedBotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, request: ManagedBotRequest) -> None:
        self.session.add(request)

    async def of_org(self, org_id: str, request_id: str) -> ManagedBotRequest | None:
        return await self.session.scalar(
            select(ManagedBotRequest).where(
                ManagedBotRequest.id == request_id, ManagedBotRequest.org_id == org_id
            )
        )

    async def latest_of_agent(self, org_id: str, agent_id: str) -> ManagedBotRequest | None:
        return await self.session.scalar(
            select(ManagedBotRequest)
            .where(ManagedBotRequest.org_id == org_id, ManagedBotRequest.agent_id == agent_id)
            .order_by(ManagedBotRequest.created_at.desc(), ManagedBotRequest.id.desc())
            .limit(1)
        )

    async def waiting_by_code_for_update(self, code_hash: str, now: datetime) -> ManagedBotRequest | None:
        """The request whose deep link carries this code, while nobody opened it and it has not expired."""
        return await self.session.scalar(
            select(ManagedBotRequest)
            .where(
                ManagedBotRequest.code_hash == code_hash,
                ManagedBotRequest.status == ManagedBotStatus.WAITING,
                ManagedBotRequest.expires_at > now,
            )
            .with_for_update()
        )

    async def opened_in_chat(self, chat_id: str) -> ManagedBotRequest | None:
        """The latest request opened in this chat with the platform bot."""
        return await self.session.scalar(
            select(ManagedBotRequest)
            .where(ManagedBotRequest.chat_id == chat_id, ManagedBotRequest.status == ManagedBotStatus.OPENED)
            .order_by(ManagedBotRequest.created_at.desc(), ManagedBotRequest.id.desc())
            .limit(1)
        )

    async def opened_by_for_update(self, telegram_user_id: str, now: datetime) -> ManagedBotRequest | None:
        """The latest unexpired request this Telegram user opened and that still waits for its bot."""
        return await self.session.scalar(
            select(ManagedBotRequest)
            .where(
                ManagedBotRequest.telegram_user_id == telegram_user_id,
                ManagedBotRequest.status == ManagedBotStatus.OPENED,
                ManagedBotRequest.expires_at > now,
            )
            .order_by(ManagedBotRequest.created_at.desc(), ManagedBotRequest.id.desc())
            .limit(1)
            .with_for_update()
        )

    async def taken_usernames(self, usernames: list[str]) -> set[str]:
        """Which of these bot usernames Hutch's bots already carry (lowercase)."""
        lowered = [u.lower() for u in usernames]
        stmt = select(func.lower(Channel.username)).where(
            Channel.type == ChannelType.TELEGRAM, func.lower(Channel.username).in_(lowered)
        )
        return {str(u) for u in (await self.session.scalars(stmt)).all()}
