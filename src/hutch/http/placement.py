"""The agents' routes reach dedicated runtimes through here: runtimes build on agents, so agents name what
they need (``hutch.agents.service.RuntimePlacer``) and the edge hands them the runtime service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.agents.service import RuntimePlacer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.runtimes.service import RuntimeService


async def runtime_placer(uow: UoWDep, resources: ResourcesDep) -> RuntimePlacer:
    return RuntimeService.of(uow, resources)


RuntimePlacerDep = Annotated[RuntimePlacer, Depends(runtime_placer)]
