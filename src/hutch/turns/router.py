"""Chat with an agent: ``POST /api/v1/agents/{id}/chat``, a turn answered whole or streamed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hutch.agents.service import AgentService
from hutch.conversations.inbox import TakenOver
from hutch.conversations.schemas import ChatRequest, ChatResponse
from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses
from hutch.engine.gateway import ModelUnavailable
from hutch.http.authz import Chatter
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.turns.chat_api import API_CHANNEL, chat_response, end_user_of
from hutch.turns.flow import AgentPaused, Answer, TurnFlow
from hutch.turns.streaming import stream_turn

router = APIRouter(prefix="/api/v1", tags=["conversations"])


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
    agents = AgentService.of(uow, resources)
    agent = await agents.get(principal, agent_id)
    flow = TurnFlow(uow, resources, api_key_id=principal.api_key_id)
    # Committed: the user's message is safe before the model is called (made durable by the answer's commit).
    turn = await flow.begin(
        agent, API_CHANNEL, end_user_of(principal), body.message, body.conversation_id, caller_waits=True
    )
    if turn.held:  # a member holds the conversation: 409, before any stream starts; the message is kept
        raise TakenOver()
    if "text/event-stream" not in request.headers.get("accept", ""):
        return chat_response(await flow.answer(turn))

    async def done(answer: Answer) -> dict[str, Any]:
        return chat_response(answer).model_dump(mode="json")

    events = stream_turn(flow, turn, done)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
