"""The accounts domain's services for routes and pages (jobs use ``X.of(ctx.uow, ctx.resources)``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.accounts.suspension import Suspensions
from hutch.http.dependencies import ResourcesDep, UoWDep


# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.
async def suspensions(uow: UoWDep, resources: ResourcesDep) -> Suspensions:
    return Suspensions.of(uow, resources)


SuspensionsDep = Annotated[Suspensions, Depends(suspensions)]
