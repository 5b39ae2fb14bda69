"""The runtimes domain's services for routes and pages (jobs use ``RuntimeService.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.runtimes.hosts import RuntimeHosts
from hutch.runtimes.service import RuntimeService


# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.
async def runtime_service(uow: UoWDep, resources: ResourcesDep) -> RuntimeService:
    return RuntimeService.of(uow, resources)


RuntimeServiceDep = Annotated[RuntimeService, Depends(runtime_service)]


async def runtime_hosts(uow: UoWDep, resources: ResourcesDep) -> RuntimeHosts:
    return RuntimeHosts.of(uow, resources)


RuntimeHostsDep = Annotated[RuntimeHosts, Depends(runtime_hosts)]
