"""Chat with an agent, and read or reset its conversations and memories."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from hutch.agents.models import Agent
from hutch.agents.service import AgentService
from hutch.conversations.chat import AgentPaused, Answer, ChatFlow
from hutch.conversations.models import Conversation
from hutch.conversations.repository import ConversationRepository, MemoryRepository, MessageRepository
from hutch.conversations.schemas import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ConversationList,
    ConversationOut,
    MemoryList,
    MemoryOut,
    MessageList,
    MessageOut,
    Usage,
)
from hutch.conversations.service import ConversationService
from hutch.conversations.streaming import stream_turn
from hutch.core.authz import Chatter, Reader, Writer
from hutch.core.dependencies import ResourcesDep, UoWDep
from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.engine.gateway import ModelUnavailable
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["conversations"])
API_CHANNEL = "api"

Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=200)]


def end_user_of(principal: Principal) -> str:
    """Who is talking, for memories and conversations: the signed-in user, or the API key."""
    return f"user:{principal.user_id}" if principal.user_id else f"key:{principal.api_key_id}"


async def _agent(principal: Principal, agent_id: str, uow: UnitOfWork, resources: Resources) -> Agent:
    return await AgentService(uow.session, resources.llm, resources.secret_box, resources.plans).get(
        principal, agent_id
    )


def chat_response(answer: Answer) -> ChatResponse:
    message, outcome = answer.message, answer.outcome
    return ChatResponse(
        conversation_id=answer.turn.conversation.id,
        message=ChatMessage(
            id=message.id, content=message.content, status=message.status, model=message.model
        ),
        usage=Usage(
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_micro_usd=outcome.cost_micro_usd,
        ),
    )


@router.post(
    "/agents/{agent_id}/chat",
    response_model=ChatResponse,
    responses={
        **error_responses(Unauthorized, Forbidden, NotFound, AgentPaused, ModelUnavailable),
        200: {"content": {"text/event-stream": {}}, "description": "The reply (or its stream)"},
    },
)
async def chat(
    agent_id: str,
    body: ChatRequest,
    request: Request,
    principal: Chatter,
    uow: UoWDep,
    resources: ResourcesDep,
) -> ChatResponse | StreamingResponse:
    """Send a message and get the agent's reply. Without `conversation_id` the message continues your open
    conversation with this agent (a reset starts a new one).

    With `Accept: text/event-stream` the reply streams as `delta` events (`{"content": ...}`) followed by
    one `done` event with the same body as the JSON answer. A failed model call still answers 200 with a
    short apology and `message.status` "failed"; the message you sent is kept either way.
    """
    agent = await _agent(principal, agent_id, uow, resources)
    flow = ChatFlow(uow, resources, api_key_id=principal.api_key_id)
    turn = await flow.begin(
        agent, API_CHANNEL, end_user_of(principal), body.message, body.conversation_id, caller_waits=True
    )
    # The user's message is safe before the model is called (made durable by the answer's commit).
    await uow.commit(resources.jobs.defer_named)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return chat_response(await flow.answer(turn))

    async def done(answer: Answer, _: UnitOfWork) -> dict[str, Any]:
        return chat_response(answer).model_dump(mode="json")

    events = stream_turn(flow, resources.jobs.defer_named, turn, done)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


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
    return MessageList(items=[MessageOut.model_validate(m, from_attributes=True) for m in items], total=total)


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
