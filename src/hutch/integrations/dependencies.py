"""The connected tools' service for routes and pages (jobs use ``ConnectedToolService.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.integrations.service import ConnectedToolService

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def connected_tool_service(uow: UoWDep, resources: ResourcesDep) -> ConnectedToolService:
    return ConnectedToolService.of(uow, resources)


ConnectedToolServiceDep = Annotated[ConnectedToolService, Depends(connected_tool_service)]
