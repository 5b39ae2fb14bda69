"""Chat with an agent: ``POST /api/v1/agents/{id}/chat``, a turn answered whole or streamed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from hutch.agents.service import AgentService
from hutch.conversations.inbox import TakenOver
from hutch.conversations.schemas import ChatRequest, ChatResponse
from hutch.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    error_responses,
)
from hutch.engine.gateway import ModelUnavailable
from hutch.http.authz import Chatter
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.http.uploads import chat_form, is_multipart, refusal_error, validated
from hutch.turns.chat_api import API_CHANNEL, chat_response, end_user_of
from hutch.turns.flow import AgentPaused, Answer, TurnFlow
from hutch.turns.media import MediaReader, ReadMedia, Received
from hutch.turns.streaming import stream_turn

router = APIRouter(prefix="/api/v1", tags=["conversations"])


CHAT_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "maxLength": 32_000, "description": "optional with a file"},
        "conversation_id": {"type": "string"},
        "file": {"type": "string", "format": "binary", "description": "an image, audio, PDF or text file"},
    },
}


class ChatUpload(BaseModel):
    """The text fields of a multipart chat message: the text may be left out when a file is sent."""

    message: str = Field(default="", max_length=32_000)
    conversation_id: str | None = Field(default=None, max_length=32)


@router.post(
    "/agents/{agent_id}/chat",
    response_model=ChatResponse,
    responses={
        **error_responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            AgentPaused,
            PayloadTooLarge,
            UnsupportedMediaType,
            ModelUnavailable,
        ),
        200: {"content": {"text/event-stream": {}}, "description": "The reply (or its stream)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ChatRequest.model_json_schema()},
                "multipart/form-data": {"schema": CHAT_FORM_SCHEMA},
            },
        }
    },
)
async def chat(
    agent_id: str,
    request: Request,
    principal: Chatter,
    uow: UoWDep,
    resources: ResourcesDep,
) -> ChatResponse | StreamingResponse:
    """Send a message and get the agent's reply. Without `conversation_id` the message continues your open
    conversation with this agent (a reset starts a new one).

    The body is JSON (`ChatRequest`), or `multipart/form-data` with `message`, `conversation_id` and one
    `file` (an image, a voice note or audio file, a PDF or text file; docs/media.md): a file larger than
    allowed answers 413 and a kind not accepted 415, with the reason in `detail`, and nothing is stored.

    With `Accept: text/event-stream` the reply streams as `delta` events (`{"content": ...}`) followed by
    one `done` event with the same body as the JSON answer. A failed model call still answers 200 with a
    short apology and `message.status` "failed"; the message you sent is kept either way.
    """
    media: ReadMedia | None = None
    upload: Received | None = None
    if is_multipart(request):
        form = await chat_form(request, resources.settings)
        if form.refused is not None:
            raise refusal_error(form.refused)
        sent = validated(ChatUpload, form.fields)
        if form.file is None and not sent.message.strip():
            raise BadRequest("Send a message, a file, or both.")
        upload = form.file
        body = ChatRequest.model_construct(message=sent.message, conversation_id=sent.conversation_id)
    else:
        body = validated(ChatRequest, await request.body())
    agents = AgentService.of(uow, resources)
    agent = await agents.get(principal, agent_id)
    text = body.message
    if upload is not None:
        # Read before phase 1, holding no connection (the reader ends this transaction first).
        media = await MediaReader.of(uow, resources).read(agent.org_id, text, [upload])
        if media.refusal is not None:
            raise refusal_error(media)
        text = media.text
    flow = TurnFlow.of_caller(uow, resources, principal)
    # Committed: the user's message is safe before the model is called (made durable by the answer's commit).
    turn = await flow.begin(
        agent,
        API_CHANNEL,
        end_user_of(principal),
        text,
        body.conversation_id,
        caller_waits=True,
        media=media,
    )
    if turn.held:  # a member holds the conversation: 409, before any stream starts; the message is kept
        raise TakenOver()
    if "text/event-stream" not in request.headers.get("accept", ""):
        return chat_response(await flow.answer(turn))

    async def done(answer: Answer) -> dict[str, Any]:
        return chat_response(answer).model_dump(mode="json")

    events = stream_turn(flow, turn, done)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
