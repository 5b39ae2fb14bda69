"""Chat with an agent: ``POST /api/v1/agents/{id}/chat``, a turn answered whole or streamed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from hutch.agents.service import AgentService
from hutch.conversations.schemas import ChatMessage, ChatRequest, ChatResponse, Usage
from hutch.core.errors import Forbidden, NotFound, Unauthorized, error_responses
from hutch.core.principal import Principal
from hutch.engine.gateway import ModelUnavailable
from hutch.http.authz import Chatter
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.turns.flow import AgentPaused, Answer, TurnFlow
from hutch.turns.streaming import stream_turn

router = APIRouter(prefix="/api/v1", tags=["conversations"])
API_CHANNEL = "api"


def end_user_of(principal: Principal) -> str:
    """Who is talking, for memories and conversations: the signed-in user, or the API key."""
    return f"user:{principal.user_id}" if principal.user_id else f"key:{principal.api_key_id}"


def chat_response(answer: Answer) -> ChatResponse:
    message, outcome = answer.message, answer.outcome
    assert message is not None, "a chat turn is stored"
    return ChatResponse(
        conversation_id=answer.turn.stored[0].id,
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
    agents = AgentService(uow.session, resources.llm, resources.secret_box, resources.plans)
    agent = await agents.get(principal, agent_id)
    flow = TurnFlow(uow, resources, api_key_id=principal.api_key_id)
    # Committed: the user's message is safe before the model is called (made durable by the answer's commit).
    turn = await flow.begin(
        agent, API_CHANNEL, end_user_of(principal), body.message, body.conversation_id, caller_waits=True
    )
    if "text/event-stream" not in request.headers.get("accept", ""):
        return chat_response(await flow.answer(turn))

    async def done(answer: Answer) -> dict[str, Any]:
        return chat_response(answer).model_dump(mode="json")

    events = stream_turn(flow, turn, done)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
