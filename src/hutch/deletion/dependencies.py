"""The deletion domain's services for routes and pages (jobs use ``X.of(ctx.uow, ctx.resources)``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.deletion.deletions import Deletions
from hutch.deletion.exports import Exports
from hutch.http.dependencies import ResourcesDep, UoWDep


# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.
async def exports(uow: UoWDep, resources: ResourcesDep) -> Exports:
    return Exports.of(uow, resources)


async def deletions(uow: UoWDep, resources: ResourcesDep) -> Deletions:
    return Deletions.of(uow, resources)


ExportsDep = Annotated[Exports, Depends(exports)]
DeletionsDep = Annotated[Deletions, Depends(deletions)]
