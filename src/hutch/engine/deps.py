"""What tools see while an agent answers: the transaction, the agent, who it is talking to, and where."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.settings import Settings

# Reports the balance an org has left, in words for the model; billing provides the real one.
BalanceReader = Callable[[], Awaitable[str]]
# Searches the agent's documents, answering in words for the model; the knowledge domain provides it.
KnowledgeSearcher = Callable[[str], Awaitable[str]]


@dataclass
class EngineDeps:
    session: AsyncSession
    settings: Settings
    agent: Agent
    org_id: str
    org_name: str
    end_user: str | None  # None: an anonymous exchange; nothing is remembered about it
    conversation_id: str | None
    channel: str
    now: datetime
    balance: BalanceReader | None = None
    knowledge: KnowledgeSearcher | None = None
