"""The conversations domain's services for routes and pages (jobs use ``InboxService.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.conversations.inbox import InboxService
from hutch.http.dependencies import ResourcesDep, UoWDep

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def inbox_service(uow: UoWDep, resources: ResourcesDep) -> InboxService:
    return InboxService.of(uow, resources)


InboxServiceDep = Annotated[InboxService, Depends(inbox_service)]
