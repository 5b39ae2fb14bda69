"""Every query on agents and provider keys; tenant filtering lives here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Select, bindparam, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.agents.models import Agent, ProviderKey
from hutch.core.principal import Principal

EncryptedKey = tuple[str, str, str | None]  # provider, encrypted API key, base URL


@dataclass(frozen=True)
class AgentToAnswer:
    """An agent with what a turn needs of its org: read in one round trip."""

    agent: Agent
    org: Org
    encrypted_keys: list[EncryptedKey]


# The chat path's lookups, built once: building a statement costs more than running it.
_KEY_COLUMNS = (ProviderKey.provider, ProviderKey.api_key_encrypted, ProviderKey.base_url)
_ENCRYPTED_KEYS_OF_ORG = select(*_KEY_COLUMNS).where(ProviderKey.org_id == bindparam("org_id"))
_KEYS_OF_AGENTS_ORG = (
    select(func.coalesce(func.json_agg(func.json_build_array(*_KEY_COLUMNS)), func.json_build_array()))
    .where(ProviderKey.org_id == Agent.org_id)
    .scalar_subquery()
)
# The provider keys of the agent's org, as a column a read of the agent carries: (provider, encrypted key,
# base URL) lists, for :func:`encrypted_keys_of`.
KEYS_OF_AGENTS_ORG = type_coerce(_KEYS_OF_AGENTS_ORG, JSON).label("encrypted_keys")
_BY_REF = (
    select(Agent, Org, KEYS_OF_AGENTS_ORG)
    .join(Org, Org.id == Agent.org_id)
    .where(
        Agent.org_id == bindparam("org_id"), (Agent.id == bindparam("ref")) | (Agent.slug == bindparam("ref"))
    )
    .limit(1)
)
_KEYS_OF_ORG = (
    select(ProviderKey).where(ProviderKey.org_id == bindparam("org_id")).order_by(ProviderKey.provider)
)


def encrypted_keys_of(carried: list[list[Any]]) -> list[EncryptedKey]:
    """The keys :data:`KEYS_OF_AGENTS_ORG` read."""
    return [(provider, key, url) for provider, key, url in carried]


class AgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def readable(self, principal: Principal) -> Select[Agent]:
        """The org's agents, narrowed to the caller's allowed agents when an API key is restricted."""
        stmt = select(Agent).where(Agent.org_id == principal.org_id)
        if principal.agent_ids is not None:
            stmt = stmt.where(Agent.id.in_(principal.agent_ids))
        return stmt

    async def first_with_role(self, principal: Principal, role: str) -> Agent | None:
        """The organisation's oldest agent with this role (its manager, say)."""
        stmt = (
            select(Agent)
            .where(Agent.org_id == principal.org_id, Agent.role == role)
            .order_by(Agent.created_at, Agent.id)
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def page(self, principal: Principal, skip: int, limit: int) -> tuple[list[Agent], int]:
        stmt = self.readable(principal)
        total = int(await self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = await self.session.scalars(stmt.order_by(Agent.created_at, Agent.id).offset(skip).limit(limit))
        return list(rows.all()), total

    async def get(self, principal: Principal, agent_id: str, *, for_update: bool = False) -> Agent | None:
        stmt = self.readable(principal).where(Agent.id == agent_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def to_answer(self, principal: Principal, ref: str) -> AgentToAnswer | None:
        """The agent named by id or slug, with its org and the org's provider keys."""
        stmt = _BY_REF
        if principal.agent_ids is not None:
            stmt = stmt.where(Agent.id.in_(principal.agent_ids))
        row = (await self.session.execute(stmt, {"org_id": principal.org_id, "ref": ref})).first()
        if row is None:
            return None
        return AgentToAnswer(row.Agent, row.Org, encrypted_keys_of(row.encrypted_keys))

    async def count_in_org(self, org_id: str) -> int:
        stmt = select(func.count()).select_from(Agent).where(Agent.org_id == org_id)
        return int(await self.session.scalar(stmt) or 0)

    async def slug_taken(self, org_id: str, slug: str, except_id: str | None = None) -> bool:
        stmt = select(Agent.id).where(Agent.org_id == org_id, Agent.slug == slug)
        if except_id is not None:
            stmt = stmt.where(Agent.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def slugs_like(self, org_id: str, base: str) -> set[str]:
        stmt = select(Agent.slug).where(Agent.org_id == org_id, Agent.slug.like(f"{base}%"))
        return set((await self.session.scalars(stmt)).all())


class ProviderKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_org(self, org_id: str) -> list[ProviderKey]:
        return list((await self.session.scalars(_KEYS_OF_ORG, {"org_id": org_id})).all())

    async def encrypted_keys(self, org_id: str) -> list[EncryptedKey]:
        """(provider, encrypted key, base URL) of each key: what every turn reads, without the rows."""
        rows = await self.session.execute(_ENCRYPTED_KEYS_OF_ORG, {"org_id": org_id})
        return [(row.provider, row.api_key_encrypted, row.base_url) for row in rows]

    async def get(self, org_id: str, key_id: str) -> ProviderKey | None:
        stmt = select(ProviderKey).where(ProviderKey.org_id == org_id, ProviderKey.id == key_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_provider(self, org_id: str, provider: str) -> ProviderKey | None:
        stmt = select(ProviderKey).where(ProviderKey.org_id == org_id, ProviderKey.provider == provider)
        return (await self.session.execute(stmt.with_for_update())).scalar_one_or_none()
