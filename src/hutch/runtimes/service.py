"""Dedicated runtimes: requesting one (plan limits, a host with room), and what a runtime is built from.

The state machine: none → provisioning → ready; a failed attempt → error → provisioning again (up to
:data:`MAX_ATTEMPTS`, by the job's retries); a suspended runtime is stopped (its workspace kept). Every
change happens in the provisioning jobs, one at a time per agent.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.agents.models import Agent, Placement
from hutch.agents.repository import AgentRepository
from hutch.agents.service import org_credentials
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.inclusions import unpaid_past_grace
from hutch.billing.ledger import Ledger
from hutch.billing.models import SubscriptionStatus
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.core.errors import Conflict, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.runtimes.config import AgentSpec, ProviderKey, RuntimeConfig
from hutch.runtimes.drivers.base import RuntimeDriver, RuntimeSpec, RuntimeUsage
from hutch.runtimes.drivers.docker import DockerDriver
from hutch.runtimes.drivers.ec2 import Ec2Driver
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus
from hutch.runtimes.repository import RuntimeHostRepository, RuntimeRepository
from hutch.settings import Settings

log = structlog.get_logger(__name__)
PROVISION_JOB = "runtimes.provision"
DESTROY_JOB = "runtimes.destroy"
MAX_ATTEMPTS = 3
LOCAL_HOST = "local"


class HasDrivers(Protocol):
    runtime_drivers: dict[str, RuntimeDriver]


class NoCapacity(Conflict):
    keeps_changes = True  # the admin alert raised with it stays

    def __init__(self) -> None:
        super().__init__("No runtime host has room for another dedicated runtime; try again later.")


class RuntimeService:
    def __init__(
        self, uow: UnitOfWork, settings: Settings, plans: PlanCatalog, secret_box: SecretBox
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.runtimes = RuntimeRepository(uow.session)
        self.runtime_hosts = RuntimeHostRepository(uow.session)
        self.settings = settings
        self.plans = plans
        self.secret_box = secret_box

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> RuntimeService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow, resources.settings, resources.plans, resources.secret_box)

    async def _agent(self, principal: Principal, agent_id: str, *, lock: bool = False) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id, for_update=lock)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def of_agent(self, principal: Principal, agent_id: str) -> Runtime | None:
        agent = await self._agent(principal, agent_id)
        return await self.runtimes.of_agent(agent.id)

    async def request(self, principal: Principal, agent_id: str) -> Runtime:
        """Provision the agent's runtime; asking again while one exists changes nothing (an errored one
        is tried again)."""
        agent = await self._agent(principal, agent_id, lock=True)  # concurrent requests queue here
        runtime = await self.runtimes.of_agent(agent.id)
        if runtime is not None:
            if runtime.status in (RuntimeStatus.ERROR, RuntimeStatus.STOPPED):
                runtime.status, runtime.attempts, runtime.last_error = RuntimeStatus.PROVISIONING, 0, None
                self.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=agent.id)
            return runtime
        await Quotas(self.session, self.plans).check_count(
            agent.org_id, "dedicated_runtimes", lambda: self.runtimes.count_in_org(agent.org_id)
        )
        host = await self._host_with_room()
        runtime = Runtime(
            id=new_id("rt"),
            org_id=agent.org_id,
            agent_id=agent.id,
            host_id=host.id,
            driver=host.driver,
            status=RuntimeStatus.PROVISIONING,
            gateway_token_encrypted=self.secret_box.encrypt("rt_" + secrets.token_urlsafe(32)),
            attempts=0,
        )
        agent.placement = Placement.DEDICATED
        self.session.add(runtime)
        await self.session.flush()
        self.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=agent.id)
        return runtime

    async def place(self, principal: Principal, agent_id: str, placement: Placement) -> None:
        """An agent's placement set through its settings: ``dedicated`` requests its runtime (402 naming the
        plan when the plan allows none, or no more), ``shared`` releases the one it has."""
        if placement is Placement.DEDICATED:
            await self.request(principal, agent_id)
            return
        agent = await self._agent(principal, agent_id, lock=True)
        if await self.runtimes.of_agent(agent.id) is not None:
            await self.remove(principal, agent_id)
        agent.placement = Placement.SHARED

    async def restart(self, principal: Principal, agent_id: str) -> Runtime:
        agent = await self._agent(principal, agent_id, lock=True)
        runtime = await self.runtimes.of_agent(agent.id)
        if runtime is None:
            raise NotFound("Runtime", "This agent has no dedicated runtime; POST .../runtime to create one.")
        runtime.status, runtime.attempts, runtime.last_error = RuntimeStatus.PROVISIONING, 0, None
        self.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=agent.id)
        return runtime

    async def remove(self, principal: Principal, agent_id: str) -> None:
        agent = await self._agent(principal, agent_id, lock=True)
        runtime = await self.runtimes.of_agent(agent.id)
        if runtime is None:
            raise NotFound("Runtime", "This agent has no dedicated runtime.")
        self.destroy_later(runtime)
        await self.session.delete(runtime)
        agent.placement = Placement.SHARED

    async def with_usage(
        self, principal: Principal, agent_id: str, drivers: HasDrivers
    ) -> tuple[Runtime | None, RuntimeUsage | None]:
        """The agent's runtime and, when it is ready, what it uses now (CPU, memory, uptime). The reading
        waits on the driver (a fraction of a second, or Docker's API): the request's transaction ends
        first, so no connection is held meanwhile."""
        runtime = await self.of_agent(principal, agent_id)
        if runtime is None or runtime.status is not RuntimeStatus.READY or not runtime.handle:
            return runtime, None
        driver = await driver_for(
            drivers.runtime_drivers, self.session, self.settings, runtime.driver, runtime.host_id
        )
        await self.uow.checkpoint()
        if driver is None:
            return runtime, None
        return runtime, await driver.usage(runtime.handle)

    async def logs(self, principal: Principal, agent_id: str, drivers: HasDrivers, lines: int) -> str:
        runtime = await self.of_agent(principal, agent_id)
        if runtime is None:
            raise NotFound("Runtime", "This agent has no dedicated runtime.")
        driver = await driver_for(
            drivers.runtime_drivers, self.session, self.settings, runtime.driver, runtime.host_id
        )
        return await driver.logs(runtime_home(self.settings, runtime.agent_id), lines) if driver else ""

    async def forget_agent(self, principal: Principal, agent_id: str) -> None:
        """The agent is being deleted: its runtime goes with it (the row by cascade, the rest in a job)."""
        runtime = await self.of_agent(principal, agent_id)
        if runtime is not None:
            self.destroy_later(runtime)

    def destroy_later(self, runtime: Runtime) -> None:
        """The runtime's process (or container, or machine) goes in a job; the row may be gone by then."""
        self.uow.defer(
            DESTROY_JOB,
            agent_id=runtime.agent_id,
            driver=runtime.driver,
            handle=runtime.handle,
            host_id=runtime.host_id,
        )

    async def _host_with_room(self) -> RuntimeHost:
        await self.ensure_local_host()
        host = await self.runtime_hosts.lock_one_with_room()
        if host is None:
            log.error("no runtime host has room")
            await raise_alert(
                self.uow,
                "runtime_capacity",
                Severity.CRITICAL,
                "No runtime host has room",
                "A dedicated runtime was refused: every enabled host is at capacity. Add a host "
                "(hutch admin add-runtime-host) or raise HUTCH_RUNTIME_LOCAL_CAPACITY.",
            )
            raise NoCapacity()
        return host

    async def hosts(self) -> list[tuple[RuntimeHost, int]]:
        """Every runtime host, by name, with how many runtimes it holds (platform admins)."""
        return await self.runtime_hosts.with_counts()

    async def ensure_local_host(self) -> None:
        """This machine, for the process driver, sized by HUTCH_RUNTIME_LOCAL_CAPACITY."""
        local = await self.runtime_hosts.named(LOCAL_HOST)
        if local is not None:  # the settings may have changed
            local.max_runtimes = self.settings.runtime_local_capacity
            local.hourly_cost_cents = self.settings.runtime_local_hourly_cost_cents
        else:
            self.session.add(
                RuntimeHost(
                    id=new_id("rh"),
                    name=LOCAL_HOST,
                    driver="process",
                    address="",
                    max_runtimes=self.settings.runtime_local_capacity,
                    hourly_cost_cents=self.settings.runtime_local_hourly_cost_cents,
                    enabled=True,
                )
            )
            await self.session.flush()


async def driver_for(
    drivers: dict[str, RuntimeDriver],
    session: AsyncSession,
    settings: Settings,
    name: str,
    host_id: str | None,
) -> RuntimeDriver | None:
    """The driver of a runtime's host: the process driver here; one Docker or EC2 driver per host (kept)."""
    if name == "process":
        return drivers.get("process")
    host = await session.get(RuntimeHost, host_id) if host_id else None
    if host is None or name not in ("docker", "ec2"):
        return None
    key = f"{name}:{host.id}"
    if key not in drivers:
        drivers[key] = (
            DockerDriver(host.address, settings.runtime_image)
            if name == "docker"
            else Ec2Driver(host.address, settings)
        )
    return drivers[key]


Standing = tuple[str, str | None]  # ("good" | "suspend" | "cancel", why)


async def standing(session: UnitOfWork, plans: PlanCatalog, settings: Settings, org_id: str) -> Standing:
    """Whether the org's billing lets its runtimes run: a subscription past due beyond the plans file's
    ``past_due_grace_hours``, or prepaid credits run out on a pay-per-use plan, suspend them; a canceled
    subscription removes them after the grace period. A suspended organisation's runtimes stay stopped
    until it is reinstated."""
    runtimes = RuntimeRepository(session.session)
    org = await runtimes.org(org_id)
    if org is not None and org.suspended_at is not None:
        return "suspend", "suspended: the organisation is suspended"
    account = await runtimes.billing_account(org_id)
    if account is not None and unpaid_past_grace(account, plans.billing, datetime.now(UTC)):
        return "suspend", "suspended: the subscription's payment is past due"
    if account is not None and account.status is SubscriptionStatus.CANCELED:
        since = account.stripe_state_at or account.created_at
        if datetime.now(UTC) - since > timedelta(hours=settings.runtime_cancel_grace_hours):
            return "cancel", "removed: the subscription was canceled"
        return "suspend", "suspended: the subscription was canceled"
    plan = await Quotas(session.session, plans).plan_of(org_id)
    if plan.pay_per_use and (await Ledger(session).balance(org_id)).credits_cents <= 0:
        return "suspend", "suspended: the prepaid credits ran out"
    return "good", None


def runtime_home(settings: Settings, agent_id: str) -> Path:
    return settings.data_dir / "runtimes" / agent_id


async def build_spec(
    session: UnitOfWork, settings: Settings, plans: PlanCatalog, secret_box: SecretBox, runtime: Runtime
) -> RuntimeSpec:
    """What the runtime is started with: the agent as it is now, the org's keys, the plan's limits."""
    agent = await session.session.get(Agent, runtime.agent_id)
    org = await session.session.get(Org, runtime.org_id)
    if agent is None or org is None:
        raise NotFound("Agent")
    keys = await org_credentials(session.session, secret_box, runtime.org_id)
    token = secret_box.decrypt(runtime.gateway_token_encrypted)
    config = RuntimeConfig(
        agent=AgentSpec(
            id=agent.id,
            org_id=agent.org_id,
            slug=agent.slug,
            name=agent.name,
            role=agent.role,
            system_prompt=agent.system_prompt,
            model=agent.model,
            fallback_model=agent.fallback_model,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
            tools=list(agent.tools),
            audience=agent.audience,
        ),
        org_name=org.name,
        provider_keys={
            p: ProviderKey.model_validate({"api_key": c.api_key, "base_url": c.base_url})
            for p, c in keys.items()
        },
        gateway_token_sha256=sha256_hex(token),
        egress_allow=list(settings.egress_allow),
    )
    plan = await Quotas(session.session, plans).plan_of(runtime.org_id)
    return RuntimeSpec(
        runtime_id=runtime.id,
        config=config,
        home=runtime_home(settings, runtime.agent_id),
        cpu=plan.limits.runtime_cpu or None,
        memory_mb=plan.limits.runtime_memory_mb or None,
    )


def config_hash(spec: RuntimeSpec) -> str:
    """Changes when the runtime must be re-provisioned: the agent's model, persona or keys, the limits."""
    data = spec.config.model_dump(mode="json")
    data["provider_keys"] = {
        p: sha256_hex(k.api_key.get_secret_value() if k.api_key else "") + (k.base_url or "")
        for p, k in spec.config.provider_keys.items()
    }
    data["limits"] = [spec.cpu, spec.memory_mb]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
