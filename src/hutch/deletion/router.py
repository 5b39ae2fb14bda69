"""Deleting an agent: ``DELETE /api/v1/agents/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses
from hutch.deletion.flow import delete_agent as delete_agent_and_its_parts
from hutch.http.authz import Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1", tags=["agents"])


@router.delete(
    "/agents/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_agent(agent_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep) -> Response:
    """Delete an agent with its conversations and memories (and its dedicated runtime, at once)."""
    await delete_agent_and_its_parts(uow, resources, principal, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
