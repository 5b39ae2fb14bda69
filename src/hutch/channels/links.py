"""A person's own addresses on shared channels (their WhatsApp number, their Telegram chat), each routed
to a personal agent of their organisation."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from hutch.agents.models import Agent
from hutch.channels.models import ChannelLink
from hutch.channels.repository import LinkRepository
from hutch.core.errors import Conflict, NotFound
from hutch.core.principal import Principal
from hutch.core.security import sha256_hex
from hutch.db.engine import UnitOfWork


async def personal_agent(uow: UnitOfWork, principal: Principal, agent_id: str | None) -> Agent:
    """The agent a personal link reaches: the one named, or the org's first personal agent."""
    agent = await LinkRepository(uow.session).personal_agent(principal.org_id, agent_id)
    if agent is None:
        if agent_id is not None:
            raise NotFound("Agent")
        raise Conflict('Create a personal agent first (POST /api/v1/agents with audience "personal").')
    return agent


async def retire_pending_links(uow: UnitOfWork, user_id: str, channel: str) -> None:
    """Earlier pending links of this user on this channel stop working: only the newest code counts."""
    await LinkRepository(uow.session).spoil_pending(
        user_id, channel, sha256_hex(secrets.token_hex(16)), datetime.now(UTC)
    )


async def links_of(uow: UnitOfWork, principal: Principal) -> list[ChannelLink]:
    """The user's links in this organisation, active ones and codes still waiting to be used."""
    assert principal.user_id is not None
    return await LinkRepository(uow.session).of_user(principal.org_id, principal.user_id, datetime.now(UTC))


async def unlink(uow: UnitOfWork, principal: Principal, link_id: str) -> None:
    """End one of the user's links: messages from that address no longer reach the agent."""
    links = LinkRepository(uow.session)
    link = await links.of_user_by_id(principal.org_id, principal.user_id, link_id)
    if link is None:
        raise NotFound("Channel link")
    await links.delete(link)
