"""Every query on what orgs' plans include (``Inclusion``), with what the customer's view joins to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.billing.models import BillingAccount, Inclusion, InclusionState, SubscriptionStatus
from hutch.channels.models import Channel
from hutch.runtimes.models import Runtime, RuntimeStatus


@dataclass(frozen=True)
class InclusionView:
    """One included thing as its customer sees it: the flow's row, with its agent, runtime and bot."""

    inclusion: Inclusion
    agent_name: str | None
    runtime_status: RuntimeStatus | None
    runtime_error: str | None
    bot_username: str | None


class InclusionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, inclusion: Inclusion) -> None:
        self.session.add(inclusion)

    async def of_org(self, org_id: str, *, for_update: bool = False) -> list[Inclusion]:
        stmt = select(Inclusion).where(Inclusion.org_id == org_id).order_by(Inclusion.item)
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.scalars(stmt)).all())

    async def by_bot_request(self, request_id: str) -> Inclusion | None:
        return await self.session.scalar(select(Inclusion).where(Inclusion.bot_request_id == request_id))

    async def orgs_to_follow(self, now: datetime, grace_hours: float) -> list[str]:
        """Orgs whose included things wait (for an agent, a bot), lost their agent, or still run although the
        subscription ended or stayed unpaid past the grace period: time or another domain moved them, not a
        billing event."""
        cutoff = now - timedelta(hours=grace_hours)
        lapsed = or_(
            BillingAccount.status == SubscriptionStatus.CANCELED,
            (BillingAccount.status == SubscriptionStatus.PAST_DUE)
            & (BillingAccount.past_due_since <= cutoff),
        )
        stmt = (
            select(Inclusion.org_id)
            .outerjoin(BillingAccount, BillingAccount.org_id == Inclusion.org_id)
            .where(
                or_(
                    Inclusion.state == InclusionState.WAITING,
                    # Its agent was deleted: the org's next first agent gets it.
                    (Inclusion.state != InclusionState.SUSPENDED) & Inclusion.agent_id.is_(None),
                    (Inclusion.state != InclusionState.SUSPENDED) & lapsed,
                )
            )
            .distinct()
            .order_by(Inclusion.org_id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def views(self, org_id: str) -> list[InclusionView]:
        stmt = (
            select(Inclusion, Agent.name, Runtime.status, Runtime.last_error, Channel.username)
            .outerjoin(Agent, Agent.id == Inclusion.agent_id)
            .outerjoin(Runtime, (Runtime.agent_id == Inclusion.agent_id) & (Inclusion.item == "runtime"))
            .outerjoin(Channel, Channel.id == Inclusion.channel_id)
            .where(Inclusion.org_id == org_id)
            .order_by(Inclusion.item)
        )
        return [InclusionView(*row) for row in (await self.session.execute(stmt)).all()]
