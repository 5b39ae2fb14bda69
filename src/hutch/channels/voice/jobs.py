"""LiveKit's events, and the watchdog that keeps running sessions within their organisation's time."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import structlog

from hutch.channels.inbound import finish_event
from hutch.channels.repository import InboxRepository, VoiceSessionRepository
from hutch.channels.voice.models import VoiceSession, VoiceStatus
from hutch.channels.voice.service import EVENT_JOB, EVENT_SOURCE, VoiceSessions
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job

log = structlog.get_logger(__name__)
WATCH_JOB = "voice.watch_sessions"


@job(EVENT_JOB, queue="channels")
async def apply_livekit_event(ctx: JobContext, event_id: str) -> str:
    event = await InboxRepository(ctx.uow.session).event_for_update(EVENT_SOURCE, event_id)
    if event is None or event.handled_at is not None:
        return "done"
    outcome = await VoiceSessions(ctx.uow, ctx.resources.plans, ctx.settings).apply(event)
    return finish_event(event, outcome)


@job(WATCH_JOB, cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def watch_sessions(ctx: JobContext, timestamp: int = 0) -> dict[str, int]:
    """Every minute: close sessions whose room is gone (a lost "left" event), charging until the room was
    last seen; warn sessions nearly out of time, and end those out of it; forget tokens never used."""
    rooms = ctx.resources.livekit
    if rooms is None:  # HUTCH_LIVEKIT_* not set
        return {}
    sessions = VoiceSessions(ctx.uow, ctx.resources.plans, ctx.settings)
    now = datetime.now(UTC)
    counts = {"expired": 0, "gone": 0, "warned": 0, "ended": 0}
    open_sessions = await VoiceSessionRepository(ctx.uow.session).open_for_update()
    for voice in open_sessions:
        if voice.status is VoiceStatus.ISSUED and voice.expires_at < now:
            await sessions.close(voice, now, "never joined")
            counts["expired"] += 1
    active = [v for v in open_sessions if v.status is VoiceStatus.ACTIVE]
    if not active:
        return counts
    alive = await rooms.existing([v.room for v in active])
    by_org: defaultdict[str, list[VoiceSession]] = defaultdict(list)
    for voice in active:
        if voice.room not in alive:
            await sessions.close(voice, voice.last_seen_at or now, "room gone")
            counts["gone"] += 1
        else:
            voice.last_seen_at = now
            if not voice.untracked:
                by_org[voice.org_id].append(voice)
    for org_id, running in by_org.items():
        left = await sessions.seconds_left(org_id, now, lock=True)
        for voice in running:
            if left <= 0:
                await rooms.end(voice.room)
                await sessions.close(voice, now, "out of time")
                counts["ended"] += 1
            elif left <= ctx.settings.voice_warning_seconds and voice.warned_at is None:
                await rooms.warn(voice.room, left)
                voice.warned_at = now
                counts["warned"] += 1
    if any(counts.values()):
        log.info("voice sessions watched", **counts)
    return counts
