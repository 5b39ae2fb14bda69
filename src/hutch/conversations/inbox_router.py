"""The inbox API: every conversation of the org's agents, live messages, human takeover, blocked end users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from hutch.conversations.attachments import file_response
from hutch.conversations.dependencies import InboxServiceDep
from hutch.conversations.inbox import (
    ConversationClosed,
    HeldByAnother,
    NotHolding,
    export_filename,
)
from hutch.conversations.inbox_repository import InboxFilter
from hutch.conversations.live import message_events
from hutch.conversations.models import ConversationStatus
from hutch.conversations.schemas import (
    EndUserOut,
    HumanReply,
    InboxConversation,
    InboxItem,
    InboxList,
    InboxMessage,
)
from hutch.core.bounds import EventPosition, Limit, Skip
from hutch.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.http.authz import CurrentUser, Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(prefix="/api/v1", tags=["inbox"])

SEE = error_responses(Unauthorized, NotFound)
HOLD = error_responses(Unauthorized, Forbidden, NotFound, HeldByAnother, NotHolding, ConversationClosed)


@router.get("/conversations", response_model=InboxList, responses=error_responses(Unauthorized))
async def list_inbox(
    principal: Reader,
    inbox: InboxServiceDep,
    agent_id: Annotated[str | None, Query(max_length=32)] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    status: ConversationStatus | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    skip: Skip = 0,
    limit: Limit = 50,
) -> InboxList:
    """Every conversation of the org's agents on every channel, newest activity first. Filter by agent,
    channel (`telegram`, `whatsapp`, `webchat`, `voice`, `api`, `openai`, ...), status (`open`,
    `needs_human`, `taken_over`, `closed`) and last activity (`since`, `until`); `q` searches the messages'
    text (words, "quoted phrases", `-excluded`)."""
    found = InboxFilter(agent_id, channel, status, q.strip() if q else None, since, until)
    return await inbox.page(principal, found, skip, limit)


@router.get("/conversations/{conversation_id}", response_model=InboxConversation, responses=SEE)
async def get_conversation(
    conversation_id: str, principal: Reader, inbox: InboxServiceDep
) -> InboxConversation:
    """A conversation with its newest 500 messages in order (role `user`, `assistant` or `human`), each
    with the tokens and cost it counted, and its end user as the channel knows them."""
    return await inbox.get(principal, conversation_id)


@router.get(
    "/conversations/{conversation_id}/events",
    responses={**SEE, 200: {"content": {"text/event-stream": {}}, "description": "New messages"}},
)
async def conversation_events(
    conversation_id: str,
    principal: Reader,
    inbox: InboxServiceDep,
    uow: UoWDep,
    resources: ResourcesDep,
    last_event_id: EventPosition = None,
) -> StreamingResponse:
    """New messages as server-sent `message` events (the body of a message in `GET` above; `id` is its
    sequence number: reconnect with `Last-Event-ID` to miss nothing). Stays open; comments keep it alive."""
    item = await inbox.item(principal, conversation_id)
    await uow.checkpoint()  # the stream holds no database connection
    seen = item.message_count if last_event_id is None else last_event_id
    events = message_events(resources.message_watch, item.id, seen)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/conversations/{conversation_id}/attachments/{attachment_id}",
    responses={**SEE, 200: {"content": {"application/octet-stream": {}}}},
)
async def get_attachment(
    conversation_id: str, attachment_id: str, principal: Reader, inbox: InboxServiceDep
) -> Response:
    """A file someone sent in the conversation (a photo, a voice note, a document), to members of the org."""
    found = await inbox.attachment(principal, conversation_id, attachment_id)
    return file_response(found)


@router.get(
    "/conversations/{conversation_id}/export",
    responses={**SEE, 200: {"content": {"application/json": {}, "text/plain": {}}}},
)
async def export_conversation(
    conversation_id: str,
    principal: Reader,
    inbox: InboxServiceDep,
    format: Literal["json", "text"] = "json",
) -> Response:
    """The conversation as a JSON file (the body of `GET` above) or as plain text, to download."""
    if format == "text":
        body = await inbox.export_text(principal, conversation_id)
        media, extension = "text/plain; charset=utf-8", "txt"
    else:
        body = await inbox.export_json(principal, conversation_id)
        media, extension = "application/json", "json"
    disposition = f'attachment; filename="{export_filename(conversation_id, extension)}"'
    response_class = PlainTextResponse if format == "text" else Response
    return response_class(body, media_type=media, headers={"Content-Disposition": disposition})


@router.post("/conversations/{conversation_id}/takeover", response_model=InboxItem, responses=HOLD)
async def take_over(conversation_id: str, principal: CurrentUser, inbox: InboxServiceDep) -> InboxItem:
    """Answer this end user yourself: the agent stays silent on the conversation until you release it
    (their messages are still stored and shown). 409 when another member holds it."""
    return await inbox.take_over(principal, conversation_id)


@router.post(
    "/conversations/{conversation_id}/reply",
    status_code=status.HTTP_201_CREATED,
    response_model=InboxMessage,
    responses={**HOLD, **error_responses(BadRequest)},
)
async def reply(
    conversation_id: str, body: HumanReply, principal: CurrentUser, inbox: InboxServiceDep
) -> InboxMessage:
    """Send a message (role `human`) to the end user through the conversation's channel: Telegram through
    the bot, WhatsApp (as the approved template outside its 24-hour window), the web widget; API
    conversations only store it. 409 unless you hold the conversation."""
    return await inbox.reply(principal, conversation_id, body.content)


@router.post("/conversations/{conversation_id}/release", response_model=InboxItem, responses=HOLD)
async def release(conversation_id: str, principal: CurrentUser, inbox: InboxServiceDep) -> InboxItem:
    """Hand the conversation back to the agent, which answers again with your messages in its history."""
    return await inbox.release(principal, conversation_id)


@router.post(
    "/conversations/{conversation_id}/close",
    response_model=InboxItem,
    responses=error_responses(Unauthorized, Forbidden, NotFound, HeldByAnother),
)
async def close(conversation_id: str, principal: Writer, inbox: InboxServiceDep) -> InboxItem:
    """Close the conversation: the end user's next message starts a new one. Ends your takeover."""
    return await inbox.close(principal, conversation_id)


@router.post(
    "/conversations/{conversation_id}/reopen",
    response_model=InboxItem,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def reopen(conversation_id: str, principal: Writer, inbox: InboxServiceDep) -> InboxItem:
    """Open a closed conversation again (409 when its end user has started a new one since)."""
    return await inbox.reopen(principal, conversation_id)


@router.post(
    "/end-users/{end_user_id}/block",
    response_model=EndUserOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def block_end_user(end_user_id: str, principal: Writer, inbox: InboxServiceDep) -> EndUserOut:
    """The org's agents stop answering this end user on their channel: their messages are refused before
    any model call and cost nothing."""
    return await inbox.block(principal, end_user_id)


@router.delete(
    "/end-users/{end_user_id}/block",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def unblock_end_user(end_user_id: str, principal: Writer, inbox: InboxServiceDep) -> Response:
    """The agents answer this end user again."""
    await inbox.unblock(principal, end_user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
