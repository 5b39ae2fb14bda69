"""Every query on dedicated runtimes and their hosts, and the billing account their org's standing reads.

Runtimes are reached through their agent, which the caller has read within the principal's rights
(``AgentRepository.get``): filtering by agent is the tenancy filter here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.billing.models import BillingAccount
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus

# Asked on every turn, so built once (building a statement costs more than running it).
_READY_OF_AGENT = select(Runtime.endpoint, Runtime.gateway_token_encrypted).where(
    Runtime.agent_id == bindparam("agent_id"), Runtime.status == RuntimeStatus.READY
)


class RuntimeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_agent(self, agent_id: str) -> Runtime | None:
        return await self.session.scalar(select(Runtime).where(Runtime.agent_id == agent_id))

    async def ready_of_agent(self, agent_id: str) -> Row[str | None, str] | None:
        """The endpoint and encrypted gateway token of the agent's runtime, if it is ready."""
        return (await self.session.execute(_READY_OF_AGENT, {"agent_id": agent_id})).first()

    async def count_in_org(self, org_id: str) -> int:
        return int(await self.session.scalar(select(func.count()).where(Runtime.org_id == org_id)) or 0)

    async def lock_all(self) -> Sequence[Runtime]:
        """Every runtime, locked; those others hold locked are skipped."""
        return (await self.session.scalars(select(Runtime).with_for_update(skip_locked=True))).all()

    async def lock_in_org(self, org_id: str) -> Sequence[Runtime]:
        """The org's runtimes, locked (suspending or restoring an org, deleting it)."""
        stmt = select(Runtime).where(Runtime.org_id == org_id).order_by(Runtime.id).with_for_update()
        return (await self.session.scalars(stmt)).all()

    async def billing_account(self, org_id: str) -> BillingAccount | None:
        return await self.session.get(BillingAccount, org_id)

    async def org(self, org_id: str) -> Org | None:
        return await self.session.get(Org, org_id)


class RuntimeHostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_one_with_room(self) -> RuntimeHost | None:
        """The enabled host holding the fewest runtimes below its capacity (then by name), locked."""
        in_use = select(Runtime.host_id, func.count().label("n")).group_by(Runtime.host_id).subquery()
        return await self.session.scalar(
            select(RuntimeHost)
            .outerjoin(in_use, in_use.c.host_id == RuntimeHost.id)
            .where(RuntimeHost.enabled.is_(True))
            .where(func.coalesce(in_use.c.n, 0) < RuntimeHost.max_runtimes)
            .order_by(func.coalesce(in_use.c.n, 0), RuntimeHost.name)
            .limit(1)
            .with_for_update(of=RuntimeHost)
        )

    async def with_counts(self) -> list[tuple[RuntimeHost, int]]:
        """Every runtime host, by name, with how many runtimes it holds."""
        held = (
            select(func.count())
            .where(Runtime.host_id == RuntimeHost.id)
            .correlate(RuntimeHost)
            .scalar_subquery()
        )
        rows = await self.session.execute(select(RuntimeHost, held).order_by(RuntimeHost.name))
        return [(host, int(count)) for host, count in rows.all()]

    async def named(self, name: str) -> RuntimeHost | None:
        return await self.session.scalar(select(RuntimeHost).where(RuntimeHost.name == name))

    async def get(self, host_id: str, *, lock: bool = False) -> RuntimeHost | None:
        return await self.session.get(RuntimeHost, host_id, with_for_update=lock or None)

    async def runtimes_on(self, host_id: str) -> int:
        stmt = select(func.count()).select_from(Runtime).where(Runtime.host_id == host_id)
        return int(await self.session.scalar(stmt) or 0)
