"""``/v1/responses``: OpenAI's Responses API, answered by the agent named in ``model``.

Each response is a turn, with the same admission, limits, key budget and metering as Chat Completions.
Kept responses (``store``, the default) continue with ``previous_response_id``; the caller's function
tools come back as ``function_call`` items and go on with ``function_call_output`` items.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from hutch.channels.api_turn import FAILURE_MESSAGE, UPSTREAM_FAILED, answer_call
from hutch.channels.openai_api.responses import ResponseCall, delete_response, read_response
from hutch.channels.openai_api.responses_schemas import ResponseCreate, ResponseDeleted, ResponseObject
from hutch.channels.openai_api.responses_stream import stream_response
from hutch.core.errors import openai_error
from hutch.http.authz import Chatter
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.turns.flow import TurnFlow

router = APIRouter(tags=["openai-compatible"])


@router.post("/v1/responses", response_model=ResponseObject)
async def create_response(
    body: ResponseCreate, principal: Chatter, uow: UoWDep, resources: ResourcesDep
) -> ResponseObject | JSONResponse | StreamingResponse:
    """OpenAI Responses, answered by the agent named in `model` (needs an API key with `chat`); with
    `stream`, the Responses API's events."""
    flow = TurnFlow.of_caller(uow, resources, principal)
    call = await ResponseCall.parse(flow, principal, body)
    turn, request = await call.begin(flow)  # committed: what the caller said is safe before the model runs
    if body.stream:
        return StreamingResponse(stream_response(flow, call, turn, request), media_type="text/event-stream")
    await answer_call(flow, turn, request, call.keep)
    if call.failed:
        return JSONResponse(openai_error(UPSTREAM_FAILED, FAILURE_MESSAGE, "upstream_error"), UPSTREAM_FAILED)
    return call.answered()


@router.get("/v1/responses/{response_id}", response_model=ResponseObject)
async def get_response(response_id: str, principal: Chatter, uow: UoWDep) -> ResponseObject:
    """A stored response of the caller's org."""
    return await read_response(uow, principal, response_id)


@router.delete("/v1/responses/{response_id}", response_model=ResponseDeleted)
async def remove_response(response_id: str, principal: Chatter, uow: UoWDep) -> ResponseDeleted:
    """Delete a stored response: it can no longer be read or continued (its conversation stays in the
    inbox, where members delete conversations)."""
    await delete_response(uow, principal, response_id)
    return ResponseDeleted(id=response_id)
