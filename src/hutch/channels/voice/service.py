"""Voice sessions: tokens against the time balance, LiveKit's events, and charging each session once.

The clock runs from the person joining the room to them leaving (or the room closing). A session is
charged when it ends, once (its ledger entry's reference is the session id); while sessions run, the time
they have used so far counts against the balance, so concurrent sessions of one organisation share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hutch.agents.models import AgentStatus
from hutch.agents.repository import AgentRepository
from hutch.billing.ledger import Ledger
from hutch.billing.models import LedgerKind, LedgerUnit
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.billing.repository import UsageCounts
from hutch.channels.models import ExternalEvent
from hutch.channels.repository import VoiceSessionRepository
from hutch.channels.voice.gateway import LiveKitConfig, livekit_config, room_token
from hutch.channels.voice.models import VoiceSession, VoiceStatus
from hutch.conversations.inbox import EndUserBlocked
from hutch.conversations.inbox_repository import EndUserRepository
from hutch.core.errors import Conflict, NotFound, PaymentRequired
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.i18n import _
from hutch.settings import Settings

EVENT_SOURCE = "livekit"
CHANNEL = "voice"  # the channel of a call's turns (``hutch.channels.voice.worker``) and of its caller
EVENT_JOB = "voice.livekit_event"


class NoTimeLeft(PaymentRequired):
    def __init__(self) -> None:
        super().__init__(
            "No voice time left for this organisation; buy a time card (GET /api/v1/billing/packages, "
            "POST /api/v1/billing/purchase)."
        )


@dataclass(frozen=True)
class IssuedToken:
    session: VoiceSession
    token: str
    seconds_left: int | None  # None: the plan includes unlimited voice
    warning: str | None


def identity_of(principal: Principal) -> str:
    return f"user:{principal.user_id}" if principal.user_id else f"key:{principal.api_key_id}"


def elapsed(session: VoiceSession, now: datetime) -> int:
    if session.started_at is None:
        return 0
    return max(0, math.ceil((now - session.started_at).total_seconds()))


class VoiceSessions:
    def __init__(self, uow: UnitOfWork, plans: PlanCatalog, settings: Settings) -> None:
        self.uow = uow
        self.session = uow.session
        self.voices = VoiceSessionRepository(uow.session)
        self.plans = plans
        self.settings = settings
        self.quotas = Quotas(uow.session, plans)

    async def _unlimited(self, org_id: str) -> bool:
        return (await self.quotas.plan_of(org_id)).limits.unlimited_voice

    async def seconds_left(self, org_id: str, now: datetime, *, lock: bool = False) -> int:
        """The time balance less what running sessions have used so far (they are charged at their end)."""
        ledger = Ledger(self.uow)
        if lock:  # one org's tokens and charges queue up behind each other
            await ledger.ensure_balance(org_id)
        balance = await ledger.balance(org_id)
        running = await self.voices.running(org_id)
        return balance.seconds - sum(elapsed(s, now) for s in running)

    async def time_left(self, org_id: str) -> int | None:
        """Seconds of voice time the organisation has left now; None when its plan does not count it."""
        if await self._unlimited(org_id):
            return None
        return max(0, await self.seconds_left(org_id, datetime.now(UTC)))

    async def issue(self, principal: Principal, agent_id: str) -> tuple[IssuedToken, LiveKitConfig]:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        config = livekit_config(self.settings)
        if agent.status is not AgentStatus.ACTIVE:
            raise Conflict("This agent is paused; set its status to active to talk with it.")
        identity = identity_of(principal)
        if await EndUserRepository(self.session).is_blocked(agent.org_id, CHANNEL, identity):
            # A blocked caller gets no room: no time runs, and nothing is charged.
            raise EndUserBlocked()
        now = datetime.now(UTC)
        unlimited = await self._unlimited(agent.org_id)
        left: int | None = None
        warning = None
        if not unlimited:
            left = await self.seconds_left(agent.org_id, now)
            if left <= 0:
                raise NoTimeLeft()
            threshold = self.plans.billing.low_time_threshold_seconds
            if left < threshold:
                warning = _("Only about {minutes} minutes of voice time left; buy a time card soon.").format(
                    minutes=max(1, left // 60)
                )
        ttl = timedelta(minutes=self.settings.voice_token_minutes)
        voice = VoiceSession(
            id=new_id("vs"),
            org_id=agent.org_id,
            agent_id=agent.id,
            user_id=principal.user_id,
            identity=identity,
            status=VoiceStatus.ISSUED,
            untracked=unlimited,
            expires_at=now + ttl,
        )
        voice.room = f"hutch-{voice.id}"
        self.voices.add(voice)
        await self.session.flush()
        token = room_token(
            config,
            room=voice.room,
            identity=voice.identity,
            name=voice.identity,
            ttl=ttl,
            metadata={"session_id": voice.id, "agent_id": agent.id},
        )
        return IssuedToken(voice, token, left, warning), config

    async def page(self, org_id: str, skip: int, limit: int) -> tuple[list[VoiceSession], int]:
        return await self.voices.page(org_id, skip, limit)

    async def summary(self, org_id: str, since: datetime) -> tuple[int, int]:
        """(sessions that ran, their seconds) since ``since``."""
        return await self.voices.summary(org_id, since)

    # --- LiveKit's events and the watchdog -------------------------------------------------------------

    async def by_room(self, room: str) -> VoiceSession | None:
        return await self.voices.by_room_for_update(room)

    async def apply(self, event: ExternalEvent) -> str:
        """Act on one stored LiveKit event; what was done."""
        payload: dict[str, Any] = event.payload
        kind = payload.get("event", "")
        room = (payload.get("room") or {}).get("name", "")
        voice = await self.by_room(room) if room else None
        if voice is None:
            return "not a Hutch room"
        stamp = int(payload.get("created_at") or 0)  # LiveKit's clock, in seconds
        at = datetime.fromtimestamp(stamp, UTC) if stamp else datetime.now(UTC)
        identity = (payload.get("participant") or {}).get("identity")
        if kind == "participant_joined" and identity == voice.identity:
            if voice.status is not VoiceStatus.ISSUED:
                return "already started"
            voice.status, voice.started_at, voice.last_seen_at = VoiceStatus.ACTIVE, at, at
            return "started"
        if (kind == "participant_left" and identity == voice.identity) or kind == "room_finished":
            return await self.close(voice, at, "left" if kind == "participant_left" else "room finished")
        return "ignored"

    async def close(self, voice: VoiceSession, ended_at: datetime, reason: str) -> str:
        """End a session and charge its seconds, once; a second close does nothing."""
        if voice.status is VoiceStatus.ENDED:
            return "already ended"
        voice.status, voice.ended_at, voice.end_reason = VoiceStatus.ENDED, ended_at, reason
        voice.seconds = elapsed(voice, ended_at)
        if voice.seconds == 0:
            return "ended"
        await self.quotas.meter(voice.org_id, ended_at, UsageCounts(voice_seconds=voice.seconds))
        if voice.untracked:
            return "ended"
        ledger = Ledger(self.uow)
        await ledger.ensure_balance(voice.org_id)
        available = (await ledger.balance(voice.org_id)).seconds
        # A session can overrun the balance by up to a watchdog interval; it is charged what is left.
        voice.charged_seconds = min(voice.seconds, max(0, available))
        if voice.charged_seconds > 0:
            await ledger.post(
                voice.org_id,
                LedgerUnit.SECONDS,
                LedgerKind.SPEND,
                -voice.charged_seconds,
                description=f"Voice session {voice.id} ({voice.seconds} s)",
                reference=f"voice:{voice.id}",
            )
        return "ended"


def time_note(seconds_left: int | None) -> str:
    """What a voice agent is told about the caller's time, so it can greet and pace itself."""
    if seconds_left is None:
        return (
            "This is a voice call. The caller's time is not tracked: greet them and, if they ask, tell them "
            "their time is not tracked (no limit applies)."
        )
    minutes = max(1, round(seconds_left / 60))
    note = (
        f"This is a voice call. The caller has about {minutes} minutes of talk time left. Greet them and "
        f'mention it naturally, like: "You have about {minutes} minutes left; how can I help?"'
    )
    if seconds_left < 120:
        note += " Time is nearly up: keep answers short and say goodbye kindly when asked to stop."
    return note
