"""Provisioning, health and removal of dedicated runtimes, one job at a time per agent.

Provisioning starts the runtime through its driver, then polls the driver's status and the runtime's
``/healthz`` until both say ready (or the timeout passes); never a fixed sleep. A failed attempt is
recorded on the runtime (status "error", the reason) and retried by the job's backoff, up to three
attempts. The health job restarts runtimes that died or stopped answering, and re-provisions those whose
agent changed (model, persona, keys, plan limits).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import structlog

from hutch.accounts.suspension import RESTORE_RUNTIMES_JOB, SUSPEND_RUNTIMES_JOB
from hutch.agents.models import Agent, Placement
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.jobs import email_owners
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.i18n import _
from hutch.runtimes.drivers.base import RuntimeDriver
from hutch.runtimes.models import Runtime, RuntimeStatus
from hutch.runtimes.repository import RuntimeRepository
from hutch.runtimes.service import (
    DESTROY_JOB,
    MAX_ATTEMPTS,
    PROVISION_JOB,
    RuntimeService,
    build_spec,
    config_hash,
    driver_for,
    runtime_home,
    standing,
)

log = structlog.get_logger(__name__)
HEALTH_JOB = "runtimes.check_health"
POLL_SECONDS = 0.05
HEALTH_TIMEOUT_SECONDS = 2.0


class NotReady(Exception):
    """The runtime did not become ready; the message says why."""


async def _driver(ctx: JobContext, name: str, host_id: str | None) -> RuntimeDriver:
    driver = await driver_for(ctx.resources.runtime_drivers, ctx.uow.session, ctx.settings, name, host_id)
    if driver is None:
        raise NotReady(f"no {name} driver for this runtime's host")
    return driver


async def healthy(endpoint: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS) as client:
            return (await client.get(f"{endpoint}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_ready(driver: RuntimeDriver, handle: str, endpoint: str, within: float) -> None:
    """Poll the driver and the runtime's health until both say ready; NotReady when it dies or times out."""
    try:
        async with asyncio.timeout(within):
            while True:
                if await driver.status(handle) != "running":
                    raise NotReady("the runtime stopped while starting; see its logs")
                if await healthy(endpoint):
                    return
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise NotReady(f"the runtime was not ready within {within:.0f} s") from None


@job(PROVISION_JOB, queue="runtimes", lock_per="agent_id")
async def provision(ctx: JobContext, runtime_id: str, agent_id: str) -> str:
    session = ctx.uow.session
    runtime = await session.get(Runtime, runtime_id, with_for_update=True)
    if runtime is None:
        return "gone"
    if runtime.status is RuntimeStatus.READY and runtime.attempts == 0:
        return "ready"
    runtime.status = RuntimeStatus.PROVISIONING
    runtime.attempts += 1
    await ctx.uow.checkpoint()  # the attempt shows while it runs
    resources = ctx.resources
    spec = await build_spec(ctx.uow, ctx.settings, resources.plans, resources.secret_box, runtime)
    driver = await _driver(ctx, runtime.driver, runtime.host_id)
    try:
        if runtime.handle:
            started = await driver.restart(spec, runtime.handle)  # the workspace is kept
        else:
            started = await driver.create(spec)
        runtime.handle, runtime.endpoint = started.handle, started.endpoint
        await ctx.uow.checkpoint()
        await wait_ready(driver, started.handle, started.endpoint, ctx.settings.runtime_ready_timeout)
    except Exception as exc:
        runtime.status, runtime.last_error = RuntimeStatus.ERROR, f"{exc.__class__.__name__}: {exc}"[:2000]
        log.warning("runtime not ready", runtime_id=runtime.id, attempt=runtime.attempts, error=str(exc))
        if runtime.attempts < MAX_ATTEMPTS:
            await ctx.uow.checkpoint()
            raise  # retried after the job's backoff
        await raise_alert(
            ctx.uow,
            "runtime_error",
            Severity.WARNING,
            f"A dedicated runtime failed {MAX_ATTEMPTS} times",
            f"Runtime {runtime.id} of agent {runtime.agent_id}: {runtime.last_error}",
            dedup_key=f"runtime_error:{runtime.id}",
            org_id=runtime.org_id,
        )
        return "error"
    first = runtime.ready_at is None
    runtime.status, runtime.last_error, runtime.attempts = RuntimeStatus.READY, None, 0
    runtime.ready_at, runtime.config_hash = datetime.now(UTC), config_hash(spec)
    if first:
        name = spec.config.agent.name
        await email_owners(
            ctx,
            runtime.org_id,
            "runtime_ready",
            lambda org: (
                _("{agent} is ready").format(agent=name),
                _(
                    "The dedicated runtime of {agent} ({org}) is ready; its messages are answered there now."
                ).format(agent=name, org=org)
                + "\n\n"
                + _("See it here: {link}").format(
                    link=f"{ctx.settings.base_url}/app/agents/{runtime.agent_id}/runtime"
                )
                + "\n",
            ),
            chat=lambda: _("Your assistant {agent} is ready.").format(agent=name),
        )
    return "ready"


@job(DESTROY_JOB, queue="runtimes", lock_per="agent_id")
async def destroy(
    ctx: JobContext, agent_id: str, driver: str, handle: str | None, host_id: str | None = None
) -> str:
    """Remove a runtime whose row is gone (deleted by its owner, or with its agent)."""
    found = await _driver(ctx, driver, host_id)
    await found.destroy(runtime_home(ctx.settings, agent_id), handle)
    return "destroyed"


@job(SUSPEND_RUNTIMES_JOB, queue="runtimes", lock_per="org_id")
async def suspend_org(ctx: JobContext, org_id: str) -> dict[str, int]:
    """Stop the runtimes of a suspended organisation at once (their workspaces stay, to restore them)."""
    verdict, why = await standing(ctx.uow, ctx.resources.plans, ctx.settings, org_id)
    if verdict != "suspend":
        return {"stopped": 0}  # reinstated meanwhile
    stopped = 0
    for runtime in await RuntimeRepository(ctx.uow.session).lock_in_org(org_id):
        if runtime.status is RuntimeStatus.STOPPED:
            continue
        if runtime.handle:
            await (await _driver(ctx, runtime.driver, runtime.host_id)).stop(runtime.handle)
        runtime.status, runtime.last_error = RuntimeStatus.STOPPED, why
        stopped += 1
    return {"stopped": stopped}


@job(RESTORE_RUNTIMES_JOB, queue="runtimes", lock_per="org_id")
async def restore_org(ctx: JobContext, org_id: str) -> dict[str, int]:
    """Start the stopped runtimes of a reinstated organisation again, if its billing lets them run."""
    verdict, _ = await standing(ctx.uow, ctx.resources.plans, ctx.settings, org_id)
    if verdict != "good":
        return {"restored": 0}
    restored = 0
    for runtime in await RuntimeRepository(ctx.uow.session).lock_in_org(org_id):
        if runtime.status is RuntimeStatus.STOPPED:
            runtime.status, runtime.attempts, runtime.last_error = RuntimeStatus.PROVISIONING, 0, None
            ctx.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=runtime.agent_id)
            restored += 1
    return {"restored": restored}


@job(HEALTH_JOB, cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def check_health(ctx: JobContext, timestamp: int = 0) -> dict[str, int]:
    """Every minute: keep runtimes in line with their org's billing (suspend, resume, remove), restart
    ready runtimes that died or stopped answering, and re-provision those whose agent changed."""
    session = ctx.uow.session
    resources = ctx.resources
    counts = {"restarted": 0, "changed": 0, "suspended": 0, "resumed": 0, "removed": 0}
    service = RuntimeService.of(ctx.uow, resources)
    runtimes = await RuntimeRepository(session).lock_all()
    for runtime in runtimes:
        verdict, why = await standing(ctx.uow, resources.plans, ctx.settings, runtime.org_id)
        try:
            driver = await _driver(ctx, runtime.driver, runtime.host_id)
        except NotReady:
            continue
        if verdict == "cancel":
            service.destroy_later(runtime)
            agent = await session.get(Agent, runtime.agent_id)
            if agent is not None:
                agent.placement = Placement.SHARED
            await session.delete(runtime)
            counts["removed"] += 1
            continue
        if verdict == "suspend":
            if runtime.status is not RuntimeStatus.STOPPED:
                if runtime.handle:
                    await driver.stop(runtime.handle)  # the workspace stays
                runtime.status, runtime.last_error = RuntimeStatus.STOPPED, why
                counts["suspended"] += 1
            continue
        if runtime.status is RuntimeStatus.STOPPED:
            runtime.status, runtime.attempts, runtime.last_error = RuntimeStatus.PROVISIONING, 0, None
            ctx.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=runtime.agent_id)
            counts["resumed"] += 1
            continue
        if runtime.status is not RuntimeStatus.READY or runtime.handle is None or runtime.endpoint is None:
            continue
        alive = await driver.status(runtime.handle) == "running" and await healthy(runtime.endpoint)
        spec = await build_spec(ctx.uow, ctx.settings, resources.plans, resources.secret_box, runtime)
        changed = runtime.config_hash != config_hash(spec)
        if alive and not changed:
            continue
        counts["restarted" if not alive else "changed"] += 1
        log.warning("runtime restarting", runtime_id=runtime.id, alive=alive, changed=changed)
        runtime.status, runtime.attempts = RuntimeStatus.PROVISIONING, 0
        runtime.last_error = None if alive else "stopped answering; restarted"
        ctx.uow.defer(PROVISION_JOB, runtime_id=runtime.id, agent_id=runtime.agent_id)
    return counts
