"""A person's own addresses on shared channels (their WhatsApp number, their Telegram chat), each routed
to a personal agent of their organisation."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update

from hutch.agents.models import Agent, Audience
from hutch.channels.models import ChannelLink, LinkStatus
from hutch.core.errors import Conflict, NotFound
from hutch.core.principal import Principal
from hutch.core.security import sha256_hex
from hutch.db.engine import UnitOfWork


async def personal_agent(uow: UnitOfWork, principal: Principal, agent_id: str | None) -> Agent:
    """The agent a personal link reaches: the one named, or the org's first personal agent."""
    stmt = select(Agent).where(Agent.org_id == principal.org_id)
    if agent_id is not None:
        stmt = stmt.where(Agent.id == agent_id)
    else:
        stmt = stmt.where(Agent.audience == Audience.PERSONAL).order_by(Agent.created_at, Agent.id)
    agent = (await uow.session.scalars(stmt.limit(1))).first()
    if agent is None:
        if agent_id is not None:
            raise NotFound("Agent")
        raise Conflict('Create a personal agent first (POST /api/v1/agents with audience "personal").')
    return agent


async def retire_pending_links(uow: UnitOfWork, user_id: str, channel: str) -> None:
    """Earlier pending links of this user on this channel stop working: only the newest code counts."""
    await uow.session.execute(
        update(ChannelLink)
        .where(
            ChannelLink.user_id == user_id,
            ChannelLink.channel == channel,
            ChannelLink.status == LinkStatus.PENDING,
        )
        .values(code_hash=sha256_hex(secrets.token_hex(16)), code_expires_at=datetime.now(UTC))
    )


async def links_of(uow: UnitOfWork, principal: Principal) -> list[ChannelLink]:
    """The user's links in this organisation, active ones and codes still waiting to be used."""
    assert principal.user_id is not None
    stmt = (
        select(ChannelLink)
        .where(
            ChannelLink.user_id == principal.user_id,
            ChannelLink.org_id == principal.org_id,
            (ChannelLink.status == LinkStatus.ACTIVE) | (ChannelLink.code_expires_at > datetime.now(UTC)),
        )
        .order_by(ChannelLink.created_at, ChannelLink.id)
    )
    return list((await uow.session.scalars(stmt)).all())


async def unlink(uow: UnitOfWork, principal: Principal, link_id: str) -> None:
    """End one of the user's links: messages from that address no longer reach the agent."""
    link = await uow.session.scalar(
        select(ChannelLink).where(
            ChannelLink.id == link_id,
            ChannelLink.user_id == principal.user_id,
            ChannelLink.org_id == principal.org_id,
        )
    )
    if link is None:
        raise NotFound("Channel link")
    await uow.session.delete(link)
