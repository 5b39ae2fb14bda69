"""An agent's dedicated runtime: create, read, restart, remove (owners and keys with `write`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hutch.core.errors import Forbidden, NotFound, QuotaExceeded, Unauthorized, error_responses
from hutch.http.authz import Reader, Writer
from hutch.http.dependencies import ResourcesDep
from hutch.runtimes.dependencies import RuntimeServiceDep
from hutch.runtimes.drivers.base import RuntimeUsage
from hutch.runtimes.models import Runtime
from hutch.runtimes.schemas import RuntimeLogs, RuntimeOut
from hutch.runtimes.service import NoCapacity

router = APIRouter(prefix="/api/v1/agents/{agent_id}/runtime", tags=["runtimes"])


def _out(runtime: Runtime | None, usage: RuntimeUsage | None = None) -> RuntimeOut:
    if runtime is None:
        return RuntimeOut(status="none")
    return RuntimeOut(
        status=runtime.status.value,
        driver=runtime.driver,
        endpoint=runtime.endpoint,
        last_error=runtime.last_error,
        attempts=runtime.attempts,
        cpu_percent=usage.cpu_percent if usage else None,
        memory_mb=usage.memory_mb if usage else None,
        uptime_seconds=usage.uptime_seconds if usage else None,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RuntimeOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, QuotaExceeded, NoCapacity),
)
async def create_runtime(agent_id: str, principal: Writer, runtimes: RuntimeServiceDep) -> RuntimeOut:
    """Give the agent a dedicated runtime; it is provisioned in the background (poll GET). Asking again
    changes nothing; an errored runtime is tried again. Over the plan's runtime limit → 402."""
    return _out(await runtimes.request(principal, agent_id))


@router.get("", response_model=RuntimeOut, responses=error_responses(Unauthorized, Forbidden, NotFound))
async def get_runtime(
    agent_id: str, principal: Reader, runtimes: RuntimeServiceDep, resources: ResourcesDep
) -> RuntimeOut:
    """Where the agent's runtime stands: none, provisioning, ready, error (with why) or stopped; while it
    is ready, its CPU (`cpu_percent`, of one core), memory (`memory_mb`) and `uptime_seconds`."""
    return _out(*await runtimes.with_usage(principal, agent_id, resources))


@router.delete(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RuntimeOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_runtime(agent_id: str, principal: Writer, runtimes: RuntimeServiceDep) -> RuntimeOut:
    """Remove the runtime (its workspace too); the agent goes back to the shared workers."""
    await runtimes.remove(principal, agent_id)
    return RuntimeOut(status="none")


@router.post(
    "/restart",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RuntimeOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def restart_runtime(agent_id: str, principal: Writer, runtimes: RuntimeServiceDep) -> RuntimeOut:
    """Restart the runtime (its workspace is kept)."""
    return _out(await runtimes.restart(principal, agent_id))


@router.get(
    "/logs",
    response_model=RuntimeLogs,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def runtime_logs(
    agent_id: str,
    principal: Reader,
    resources: ResourcesDep,
    runtimes: RuntimeServiceDep,
    lines: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> RuntimeLogs:
    """What the agent's runtime printed lately (its own output; never the platform's)."""
    return RuntimeLogs(text=await runtimes.logs(principal, agent_id, resources, lines))
