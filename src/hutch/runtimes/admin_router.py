"""Runtime hosts (platform admins): list, add, pause and resume, remove."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from hutch.core.errors import Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.request_context import client_ip
from hutch.http.authz import PlatformAdmin
from hutch.runtimes.dependencies import RuntimeHostsDep
from hutch.runtimes.hosts import NewHost
from hutch.runtimes.models import RuntimeHost
from hutch.runtimes.schemas import RuntimeHostCreate

router = APIRouter(prefix="/api/v1/admin/runtime-hosts", tags=["admin"])
HOST_ERRORS = error_responses(Unauthorized, Forbidden, NotFound, Conflict)


class RuntimeHostOut(BaseModel):
    id: str
    name: str
    driver: str
    address: str
    max_runtimes: int
    runtimes: int
    enabled: bool
    hourly_cost_cents: int
    created_at: datetime

    @classmethod
    def of(cls, host: RuntimeHost, held: int) -> RuntimeHostOut:
        return cls(
            id=host.id,
            name=host.name,
            driver=host.driver,
            address=host.address,
            max_runtimes=host.max_runtimes,
            runtimes=held,
            enabled=host.enabled,
            hourly_cost_cents=host.hourly_cost_cents,
            created_at=host.created_at,
        )


class RuntimeHostList(BaseModel):
    items: list[RuntimeHostOut]
    total: int


@router.get("", response_model=RuntimeHostList, responses=error_responses(Unauthorized, Forbidden))
async def list_hosts(_: PlatformAdmin, hosts: RuntimeHostsDep) -> RuntimeHostList:
    """Every runtime host, by name: its driver, address, capacity, how many runtimes it holds, whether it
    takes new ones."""
    found = await hosts.list()
    return RuntimeHostList(items=[RuntimeHostOut.of(h, n) for h, n in found], total=len(found))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RuntimeHostOut,
    responses=error_responses(Unauthorized, Forbidden, Conflict),
)
async def add_host(
    body: RuntimeHostCreate, request: Request, admin: PlatformAdmin, hosts: RuntimeHostsDep
) -> RuntimeHostOut:
    """Add a Docker engine or an EC2 region; placement fills the emptiest enabled host with room. Audited."""
    host = await hosts.add(NewHost(**body.model_dump()), admin, client_ip(request))
    return RuntimeHostOut.of(host, 0)


@router.post("/{host_id}/pause", response_model=RuntimeHostOut, responses=HOST_ERRORS)
async def pause_host(
    host_id: str, request: Request, admin: PlatformAdmin, hosts: RuntimeHostsDep
) -> RuntimeHostOut:
    """Stop placing new runtimes on the host; those it holds keep running. Audited."""
    host = await hosts.set_enabled(host_id, False, admin, client_ip(request))
    return RuntimeHostOut.of(host, await hosts.held(host.id))


@router.post("/{host_id}/resume", response_model=RuntimeHostOut, responses=HOST_ERRORS)
async def resume_host(
    host_id: str, request: Request, admin: PlatformAdmin, hosts: RuntimeHostsDep
) -> RuntimeHostOut:
    """Let a paused host take new runtimes again. Audited."""
    host = await hosts.set_enabled(host_id, True, admin, client_ip(request))
    return RuntimeHostOut.of(host, await hosts.held(host.id))


@router.delete("/{host_id}", status_code=status.HTTP_204_NO_CONTENT, responses=HOST_ERRORS)
async def remove_host(
    host_id: str, request: Request, admin: PlatformAdmin, hosts: RuntimeHostsDep
) -> Response:
    """Remove a host that holds no runtime (409 otherwise; this machine's host is paused, not removed).
    Audited."""
    await hosts.remove(host_id, admin, client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
