"""What an agent remembers, per end user: the people it remembers, and forgetting a person entirely (one
memory at a time is ``DELETE /api/v1/agents/{id}/memories/{memory_id}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from hutch.agents.dependencies import AgentServiceDep
from hutch.conversations.memories import Memories
from hutch.core.errors import Forbidden, InvalidField, NotFound, Unauthorized, error_responses
from hutch.http.authz import Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1/agents/{agent_id}/memories", tags=["conversations"])
EndUser = Annotated[str | None, Query(min_length=1, max_length=200)]


async def memories(uow: UoWDep, resources: ResourcesDep) -> Memories:
    return Memories.of(uow, resources)


MemoriesDep = Annotated[Memories, Depends(memories)]


class RememberedPersonOut(BaseModel):
    end_user: str  # as the channel names them: "telegram:<chat id>", "whatsapp:+1555...", an API `user`
    facts: int
    summaries: int
    last_at: datetime


class RememberedPeople(BaseModel):
    items: list[RememberedPersonOut]


class Forgotten(BaseModel):
    end_user: str
    deleted: int


@router.get("/end-users", response_model=RememberedPeople, responses=error_responses(Unauthorized, NotFound))
async def remembered_people(
    agent_id: str,
    principal: Reader,
    agents: AgentServiceDep,
    service: MemoriesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> RememberedPeople:
    """The end users the agent remembers something about, with how many facts and summaries, most recently
    remembered first. `GET /api/v1/agents/{id}/memories?end_user=...` lists one person's memories."""
    agent = await agents.get(principal, agent_id)
    people = await service.people(agent, limit)
    return RememberedPeople(
        items=[RememberedPersonOut.model_validate(p, from_attributes=True) for p in people]
    )


@router.delete(
    "", response_model=Forgotten, responses=error_responses(Unauthorized, Forbidden, NotFound, InvalidField)
)
async def forget_person(
    agent_id: str,
    principal: Writer,
    agents: AgentServiceDep,
    service: MemoriesDep,
    end_user: EndUser = None,
) -> Forgotten:
    """Make the agent forget everything it remembers about one end user (`end_user` is required)."""
    agent = await agents.get(principal, agent_id)  # another org's agent is a 404 before anything else
    if end_user is None:
        raise InvalidField("end_user", "name the end user to forget (?end_user=...)")
    return Forgotten(end_user=end_user, deleted=await service.forget_person(agent, end_user))
