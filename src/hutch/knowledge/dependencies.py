"""The knowledge domain's services for routes and pages (jobs use ``KnowledgeService.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.knowledge.service import KnowledgeService

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def knowledge_service(uow: UoWDep, resources: ResourcesDep) -> KnowledgeService:
    return KnowledgeService.of(uow, resources)


KnowledgeServiceDep = Annotated[KnowledgeService, Depends(knowledge_service)]
