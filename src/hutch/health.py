"""Liveness, readiness and metrics endpoints for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from hutch.core.metrics import CONTENT_TYPE
from hutch.db.readiness import applied_revisions
from hutch.http.dependencies import ResourcesDep
from hutch.resources import Resources

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", summary="Liveness: the process is running")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readiness_problem(resources: Resources) -> str | None:
    """None when the database answers and its schema is at the migrations' head, else the reason."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), resources.database.engine.connect() as conn:
            current = await applied_revisions(conn)
    except (TimeoutError, OSError, SQLAlchemyError):
        return "database unreachable"
    if current != resources.migration_heads:
        return "database migrations are behind; run: hutch db upgrade"
    return None


@router.get(
    "/readyz",
    summary="Readiness: the database answers and migrations are current",
    responses={503: {"description": "Not ready; the detail says why"}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    problem = await readiness_problem(resources)
    if problem is not None:
        return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(resources: ResourcesDep) -> Response:
    try:
        resources.metrics.set_queue_counts(await resources.jobs.queue_counts())
    except Exception:  # noqa: BLE001 - metrics stay available while the database is down
        resources.metrics.jobs_in_queue.clear()
    return Response(resources.metrics.render(), media_type=CONTENT_TYPE)
