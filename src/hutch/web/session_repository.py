"""Every query on dashboard sign-ins (``web_sessions``), found by the hash of their cookie's token."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import User
from hutch.web.models import WebSession


class WebSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, web_session: WebSession) -> None:
        self.session.add(web_session)
        await self.session.flush()

    async def get(self, token_hash: str) -> WebSession | None:
        return await self.session.get(WebSession, token_hash)

    async def user(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def delete(self, token_hash: str) -> None:
        await self.session.execute(delete(WebSession).where(WebSession.id == token_hash))
