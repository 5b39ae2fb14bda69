"""Voice: a token to talk with an agent in a LiveKit room, the sessions so far, and LiveKit's webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field

from hutch.channels.inbound import store_event
from hutch.channels.voice.gateway import VoiceNotConfigured, livekit_config, verify_webhook
from hutch.channels.voice.models import VoiceSession
from hutch.channels.voice.service import EVENT_JOB, EVENT_SOURCE, NoTimeLeft, VoiceSessions
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.db.engine import UnitOfWork
from hutch.http.authz import Chatter, Reader
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

router = APIRouter(tags=["voice"])
SUMMARY_DAYS = 30


class VoiceTokenRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=32)


class VoiceTokenOut(BaseModel):
    token: str
    url: str
    room: str
    session_id: str
    expires_at: datetime
    seconds_left: int | None  # None: the plan includes unlimited voice
    warning: str | None


class VoiceSessionOut(BaseModel):
    id: str
    agent_id: str
    room: str
    status: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    seconds: int
    cost_seconds: int  # drawn from the prepaid time


class VoiceSummary(BaseModel):
    days: int
    sessions: int
    hours: float
    average_minutes: float


class VoiceSessionList(BaseModel):
    items: list[VoiceSessionOut]
    total: int
    summary: VoiceSummary


def _sessions(uow: UnitOfWork, resources: Resources) -> VoiceSessions:
    return VoiceSessions(uow, resources.plans, resources.settings)


@router.post(
    "/api/v1/voice/token",
    response_model=VoiceTokenOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, NoTimeLeft, VoiceNotConfigured),
)
async def voice_token(
    body: VoiceTokenRequest, principal: Chatter, uow: UoWDep, resources: ResourcesDep
) -> VoiceTokenOut:
    """A LiveKit token to talk with the agent: one new room per session, joinable only with this token, for
    `HUTCH_VOICE_TOKEN_MINUTES`. Refused (402) when the organisation has no voice time left, and (403) when
    the org blocked the caller from the inbox; `warning` says when little is left. The time is charged by
    the second when the session ends."""
    issued, config = await _sessions(uow, resources).issue(principal, body.agent_id)
    return VoiceTokenOut(
        token=issued.token,
        url=config.url,
        room=issued.session.room,
        session_id=issued.session.id,
        expires_at=issued.session.expires_at,
        seconds_left=issued.seconds_left,
        warning=issued.warning,
    )


def _out(voice: VoiceSession) -> VoiceSessionOut:
    return VoiceSessionOut(
        id=voice.id,
        agent_id=voice.agent_id,
        room=voice.room,
        status=voice.status.value,
        created_at=voice.created_at,
        started_at=voice.started_at,
        ended_at=voice.ended_at,
        end_reason=voice.end_reason,
        seconds=voice.seconds,
        cost_seconds=voice.charged_seconds,
    )


@router.get(
    "/api/v1/voice/sessions",
    response_model=VoiceSessionList,
    responses=error_responses(Unauthorized, Forbidden),
)
async def voice_sessions(
    principal: Reader,
    uow: UoWDep,
    resources: ResourcesDep,
    skip: Skip = 0,
    limit: Limit = 50,
) -> VoiceSessionList:
    """The organisation's voice sessions, newest first, and its last 30 days in hours and average minutes."""
    sessions = _sessions(uow, resources)
    items, total = await sessions.page(principal.org_id, skip, limit)
    count, seconds = await sessions.summary(
        principal.org_id, datetime.now(UTC) - timedelta(days=SUMMARY_DAYS)
    )
    return VoiceSessionList(
        items=[_out(v) for v in items],
        total=total,
        summary=VoiceSummary(
            days=SUMMARY_DAYS,
            sessions=count,
            hours=round(seconds / 3600, 2),
            average_minutes=round(seconds / count / 60, 1) if count else 0.0,
        ),
    )


@router.post("/webhooks/livekit", responses=error_responses(Unauthorized, VoiceNotConfigured))
async def livekit_webhook(request: Request, uow: UoWDep, resources: ResourcesDep) -> dict[str, bool]:
    """LiveKit's room events, signed with the API secret: stored once per event id, applied by a job."""
    config = livekit_config(resources.settings)
    event = verify_webhook(config, await request.body(), request.headers.get("authorization"))
    if not event.id:
        return {"ok": True}
    payload = MessageToDict(event, preserving_proto_field_name=True)
    if await store_event(uow.session, EVENT_SOURCE, event.id, payload):
        await resources.jobs.defer_within(uow.session, EVENT_JOB, event_id=event.id)
    return {"ok": True}
