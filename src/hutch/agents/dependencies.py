"""The agents domain's services for routes and pages (jobs use ``AgentService.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.agents.service import AgentService
from hutch.http.dependencies import ResourcesDep, UoWDep

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def agent_service(uow: UoWDep, resources: ResourcesDep) -> AgentService:
    return AgentService.of(uow, resources)


AgentServiceDep = Annotated[AgentService, Depends(agent_service)]
