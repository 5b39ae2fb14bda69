"""FastAPI dependencies shared by every domain: resources, settings and the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from hutch.db.engine import UnitOfWork, unit_of_work
from hutch.resources import Resources
from hutch.settings import Settings


# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop per request.
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_settings(request: Request) -> Settings:
    resources: Resources = request.app.state.resources
    return resources.settings


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """One transaction per request: committed when the handler returns (before the response is sent), rolled
    back if it raises."""
    resources: Resources = request.app.state.resources
    async with unit_of_work(resources.database, resources.jobs) as uow:
        yield uow


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# Function scope: the transaction ends before the response is sent, so a client that got its answer can use
# what it wrote at once (FastAPI's default for dependencies with yield ends them after the response).
UoWDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
