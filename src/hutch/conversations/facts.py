"""Facts the memory tools keep about an end user: memory rows, written in the reply's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.repository import MemoryRepository

MAX_FACTS_PER_USER = 200


class StoredFacts:
    def __init__(self, session: AsyncSession, org_id: str, agent_id: str) -> None:
        self.memories = MemoryRepository(session)
        self.org_id = org_id
        self.agent_id = agent_id

    async def add(self, end_user: str, fact: str) -> None:
        await self.memories.add_fact(self.org_id, self.agent_id, end_user, fact)
        await self.memories.trim_facts(self.agent_id, end_user, keep=MAX_FACTS_PER_USER)

    async def forget(self, end_user: str, about: str) -> int:
        return await self.memories.forget_facts(self.agent_id, end_user, about)

    async def count(self, end_user: str) -> int:
        return await self.memories.count_facts(self.agent_id, end_user)
