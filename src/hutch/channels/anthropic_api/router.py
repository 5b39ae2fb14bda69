"""``/v1/messages``: Anthropic's Messages API, answered by the agent named in ``model``.

A Hutch API key with the ``chat`` scope goes in ``x-api-key`` (what Anthropic's SDKs send) or
``Authorization: Bearer``; ``anthropic-version`` is accepted and not needed. Errors come in Anthropic's
shape; a plan limit or an empty balance is a 402 ``billing_error``, as Anthropic's own.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from hutch.channels.anthropic_api.messages import MessagesCall, stream_message
from hutch.channels.anthropic_api.schemas import MessageOut, MessagesRequest
from hutch.channels.anthropic_api.translate import message_of
from hutch.channels.api_turn import FAILURE_MESSAGE, UPSTREAM_FAILED, answer_call
from hutch.core.errors import anthropic_error
from hutch.http.authz import Chatter
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.turns.flow import TurnFlow

router = APIRouter(tags=["anthropic-compatible"])


@router.post("/v1/messages", response_model=MessageOut)
async def create_message(
    body: MessagesRequest, principal: Chatter, uow: UoWDep, resources: ResourcesDep
) -> MessageOut | JSONResponse | StreamingResponse:
    """Anthropic Messages, answered by the agent named in `model` (needs an API key with `chat`); with
    `stream`, Anthropic's events."""
    flow = TurnFlow.of_caller(uow, resources, principal)
    call = await MessagesCall.parse(flow, principal, body)
    turn, request = await call.begin(flow)  # committed: what the caller said is safe before the model runs
    if body.stream:
        return StreamingResponse(stream_message(flow, call, turn, request), media_type="text/event-stream")
    outcome = (await answer_call(flow, turn, request)).outcome
    if not outcome.ok:
        return JSONResponse(anthropic_error(UPSTREAM_FAILED, FAILURE_MESSAGE), UPSTREAM_FAILED)
    return message_of(call.id, body.model, outcome)
