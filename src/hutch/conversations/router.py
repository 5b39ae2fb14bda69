"""Read or reset an agent's conversations and memories (chatting is ``hutch.turns.router``)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hutch.agents.models import Agent
from hutch.agents.service import AgentService
from hutch.conversations.attachments import attachments_out
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.models import Conversation
from hutch.conversations.repository import ConversationRepository, MemoryRepository, MessageRepository
from hutch.conversations.schemas import (
    ConversationList,
    ConversationOut,
    MemoryList,
    MemoryOut,
    MessageList,
    MessageOut,
)
from hutch.conversations.service import ConversationService
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.http.authz import Chatter, Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["conversations"])


async def _agent(principal: Principal, agent_id: str, uow: UnitOfWork, resources: Resources) -> Agent:
    return await AgentService.of(uow, resources).get(principal, agent_id)


def _conversation_out(c: Conversation) -> ConversationOut:
    return ConversationOut.model_validate(c, from_attributes=True)


@router.get(
    "/agents/{agent_id}/conversations",
    response_model=ConversationList,
    responses=error_responses(Unauthorized, NotFound),
)
async def list_conversations(
    agent_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep, skip: Skip = 0, limit: Limit = 50
) -> ConversationList:
    """The agent's conversations, most recent first, on every channel."""
    agent = await _agent(principal, agent_id, uow, resources)
    items, total = await ConversationRepository(uow.session).page_of_agent(
        agent.org_id, agent.id, skip, limit
    )
    return ConversationList(items=[_conversation_out(c) for c in items], total=total)


@router.get(
    "/agents/{agent_id}/conversations/{conversation_id}/messages",
    response_model=MessageList,
    responses=error_responses(Unauthorized, NotFound),
)
async def list_messages(
    agent_id: str,
    conversation_id: str,
    principal: Reader,
    uow: UoWDep,
    resources: ResourcesDep,
    skip: Skip = 0,
    limit: Limit = 100,
) -> MessageList:
    """A conversation's messages in order, with the model, tokens, cost and tool calls of each reply."""
    agent = await _agent(principal, agent_id, uow, resources)
    conversation = await ConversationService(uow.session).get(agent.org_id, agent.id, conversation_id)
    items, total = await MessageRepository(uow.session).page(conversation.id, skip, limit)
    files = await AttachmentRepository(uow.session).of_messages(agent.org_id, [m.id for m in items])
    shown = []
    for m in items:
        message = MessageOut.model_validate(m, from_attributes=True)
        message.attachments = attachments_out(files, m.id)
        shown.append(message)
    return MessageList(items=shown, total=total)


@router.post(
    "/agents/{agent_id}/conversations/{conversation_id}/reset",
    response_model=ConversationOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def reset_conversation(
    agent_id: str, conversation_id: str, principal: Chatter, uow: UoWDep, resources: ResourcesDep
) -> ConversationOut:
    """Close a conversation: the next message from its end user starts a new one. Messages are kept."""
    agent = await _agent(principal, agent_id, uow, resources)
    return _conversation_out(
        await ConversationService(uow.session).reset(agent.org_id, agent.id, conversation_id)
    )


@router.get(
    "/agents/{agent_id}/memories",
    response_model=MemoryList,
    responses=error_responses(Unauthorized, NotFound),
)
async def list_memories(
    agent_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep, end_user: str | None = None
) -> MemoryList:
    """What the agent remembers (facts and conversation summaries), optionally for one end user."""
    agent = await _agent(principal, agent_id, uow, resources)
    memories = await MemoryRepository(uow.session).of_agent_user(agent.org_id, agent.id, end_user)
    return MemoryList(items=[MemoryOut.model_validate(m, from_attributes=True) for m in memories])


@router.delete(
    "/agents/{agent_id}/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_memory(
    agent_id: str, memory_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Make the agent forget one memory."""
    agent = await _agent(principal, agent_id, uow, resources)
    if not await MemoryRepository(uow.session).delete_in_org(agent.org_id, agent.id, memory_id):
        raise NotFound("Memory")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
