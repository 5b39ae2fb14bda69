"""What an agent remembers about each end user (facts it chose to keep, summaries of long conversations):
listed per end user and forgotten on request, one memory or everything about a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hutch.agents.models import Agent
from hutch.conversations.models import Memory
from hutch.conversations.repository import MemoryListing, MemoryRepository
from hutch.core.errors import NotFound
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources


@dataclass(frozen=True)
class RememberedPerson:
    end_user: str
    facts: int
    summaries: int
    last_at: datetime


class Memories:
    def __init__(self, uow: UnitOfWork) -> None:
        self.memories = MemoryRepository(uow.session)
        self.listing = MemoryListing(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Memories:
        return cls(uow)

    async def people(self, agent: Agent, limit: int = 200) -> list[RememberedPerson]:
        """The end users the agent remembers something about, most recently remembered first."""
        rows = await self.listing.end_users(agent.org_id, agent.id, limit)
        return [RememberedPerson(*row) for row in rows]

    async def of_person(self, agent: Agent, end_user: str | None) -> list[Memory]:
        return await self.memories.of_agent_user(agent.org_id, agent.id, end_user)

    async def forget(self, agent: Agent, memory_id: str) -> None:
        if not await self.memories.delete_in_org(agent.org_id, agent.id, memory_id):
            raise NotFound("Memory")

    async def forget_person(self, agent: Agent, end_user: str) -> int:
        """Forget everything the agent remembers about ``end_user``; how many memories went."""
        return await self.listing.delete_of_end_user(agent.org_id, agent.id, end_user)
