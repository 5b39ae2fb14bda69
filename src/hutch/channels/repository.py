"""Every query on channels, personal links, the inbox, daily message counts and voice sessions; an
organisation's rows are picked by one filter, :func:`_in_org`."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from hutch.accounts.models import Org
from hutch.agents.models import Agent, Audience
from hutch.agents.repository import KEYS_OF_AGENTS_ORG, EncryptedKey, encrypted_keys_of
from hutch.channels.models import (
    Channel,
    ChannelLink,
    ChannelType,
    ChannelUsageDaily,
    ExternalEvent,
    LinkStatus,
)
from hutch.channels.voice.models import VoiceSession, VoiceStatus
from hutch.db.carried import Carried

Owned = type[Agent] | type[Channel] | type[ChannelLink] | type[VoiceSession]


def _in_org(entity: Owned, org_id: str) -> ColumnElement[bool]:
    """The tenancy filter: rows of one organisation."""
    return entity.org_id == org_id


# --- channels -------------------------------------------------------------------------------------------


# A bot's update with the bot's channel, its agent, the agent's org and the org's provider keys: what a
# Telegram turn reads first, in one statement. Only the update's row is locked (its job runs once).
_EVENT_WITH_BOT = (
    select(ExternalEvent, Channel, Agent, Org, KEYS_OF_AGENTS_ORG)
    .select_from(ExternalEvent)
    .outerjoin(Channel, Channel.id == bindparam("channel_id"))
    .outerjoin(Agent, Agent.id == Channel.agent_id)
    .outerjoin(Org, Org.id == Agent.org_id)
    .where(ExternalEvent.source == bindparam("source"), ExternalEvent.external_id == bindparam("external_id"))
    .with_for_update(of=ExternalEvent)
)
# A bot's channel, its agent (when it has one), the agent's org and the org's provider keys.
Bot = tuple[Channel, Agent | None, Org | None, list[EncryptedKey]]


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def event_with_bot(
        self, source: str, external_id: str, channel_id: str
    ) -> tuple[ExternalEvent, Bot | None] | None:
        """The inbound event, locked, with the bot it came to (None when the channel is gone), in one read;
        the rows are kept by the unit of work, so reading them again by primary key costs nothing."""
        params = {"source": source, "external_id": external_id, "channel_id": channel_id}
        row = (await self.session.execute(_EVENT_WITH_BOT, params)).first()
        if row is None:
            return None
        event, channel, agent, org, keys = row
        return event, (None if channel is None else (channel, agent, org, encrypted_keys_of(keys)))

    def add(self, channel: Channel) -> None:
        self.session.add(channel)

    async def delete(self, channel: Channel) -> None:
        await self.session.delete(channel)

    async def get(self, channel_id: str) -> Channel | None:
        return await self.session.get(Channel, channel_id)

    async def telegram_bot(self, bot_id: str) -> Channel | None:
        """The channel of the Telegram bot with this user id, whichever agent it serves."""
        return await self.session.scalar(
            select(Channel).where(Channel.type == ChannelType.TELEGRAM, Channel.external_id == bot_id)
        )

    async def telegram_bots_in_org(self, org_id: str) -> int:
        """How many Telegram bots the org's agents have, however each was made."""
        stmt = select(func.count()).where(_in_org(Channel, org_id), Channel.type == ChannelType.TELEGRAM)
        return int(await self.session.scalar(stmt) or 0)

    async def of_agent(self, agent_id: str) -> list[Channel]:
        stmt = select(Channel).where(Channel.agent_id == agent_id).order_by(Channel.created_at, Channel.id)
        return list((await self.session.scalars(stmt)).all())

    async def of_agent_for_update(self, agent_id: str, channel_id: str) -> Channel | None:
        return await self.session.scalar(
            select(Channel).where(Channel.id == channel_id, Channel.agent_id == agent_id).with_for_update()
        )

    async def webhook_secret_hash(self, channel_id: str) -> str | None:
        """The sha256 of the secret Telegram echoes with the channel's updates; None: no such channel."""
        stmt = select(Channel.webhook_secret_hash).where(Channel.id == channel_id)
        return await self.session.scalar(stmt)

    async def widget(self, token: str) -> tuple[Channel, Agent] | None:
        """The web chat widget behind a public token, with its agent."""
        row = (
            await self.session.execute(
                select(Channel, Agent)
                .join(Agent, Agent.id == Channel.agent_id)
                .where(Channel.type == ChannelType.WEBCHAT, Channel.external_id == token)
            )
        ).first()
        return None if row is None else (row[0], row[1])


# --- personal links -------------------------------------------------------------------------------------


# What a WhatsApp turn reads first, in one statement: the address's active link, WhatsApp's 24-hour window
# for free-form replies opened by the message (at its time; a retry never moves it back) and the link locked
# by that update; then its agent, the agent's org and the org's provider keys.
_WINDOW_OPENED = (
    update(ChannelLink)
    .where(
        # (bind names that are not columns: an update's parameters named after its columns would be SET)
        ChannelLink.channel == bindparam("link_channel"),
        ChannelLink.address == bindparam("link_address"),
        ChannelLink.status == LinkStatus.ACTIVE,
    )
    .values(last_inbound_at=func.greatest(ChannelLink.last_inbound_at, bindparam("received_at")))
    .returning(*ChannelLink.__table__.columns)
    .cte("window_opened")
)
_OPENED_LINK = aliased(ChannelLink, _WINDOW_OPENED)
_LINKED_AGENT = (
    select(_OPENED_LINK, Agent, Org, KEYS_OF_AGENTS_ORG)
    .outerjoin(Agent, Agent.id == _OPENED_LINK.agent_id)
    .outerjoin(Org, Org.id == Agent.org_id)
    .execution_options(populate_existing=True)  # the link as the update left it, even if loaded before
)


# An address's link, its agent (when it still has one), the agent's org and the org's provider keys.
LinkedAgent = tuple[ChannelLink, Agent | None, Org | None, list[EncryptedKey]]


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def inbound_to_active(
        self, channel: str, address: str, received_at: datetime
    ) -> LinkedAgent | None:
        """The address's active link, its reply window opened by a message ``received_at`` and the link
        locked, with its agent, the agent's org and the org's provider keys: one statement (the rows kept
        by the unit of work)."""
        params = {"link_channel": channel, "link_address": address, "received_at": received_at}
        row = (await self.session.execute(_LINKED_AGENT, params)).first()
        if row is None:
            return None
        link, agent, org, keys = row
        return link, agent, org, encrypted_keys_of(keys)

    def add(self, link: ChannelLink) -> None:
        self.session.add(link)

    async def delete(self, link: ChannelLink) -> None:
        await self.session.delete(link)

    async def personal_agent(self, org_id: str, agent_id: str | None) -> Agent | None:
        """The org's agent named, or (``agent_id`` None) its first personal agent."""
        stmt = select(Agent).where(_in_org(Agent, org_id))
        if agent_id is not None:
            stmt = stmt.where(Agent.id == agent_id)
        else:
            stmt = stmt.where(Agent.audience == Audience.PERSONAL).order_by(Agent.created_at, Agent.id)
        return (await self.session.scalars(stmt.limit(1))).first()

    async def spoil_pending(self, user_id: str, channel: str, code_hash: str, now: datetime) -> None:
        """The user's pending links on this channel get ``code_hash`` and expire ``now``."""
        await self.session.execute(
            update(ChannelLink)
            .where(
                ChannelLink.user_id == user_id,
                ChannelLink.channel == channel,
                ChannelLink.status == LinkStatus.PENDING,
            )
            .values(code_hash=code_hash, code_expires_at=now)
        )

    async def of_user(self, org_id: str, user_id: str, now: datetime) -> list[ChannelLink]:
        """The user's active links in this organisation and the pending ones whose code still works."""
        stmt = (
            select(ChannelLink)
            .where(
                ChannelLink.user_id == user_id,
                _in_org(ChannelLink, org_id),
                (ChannelLink.status == LinkStatus.ACTIVE) | (ChannelLink.code_expires_at > now),
            )
            .order_by(ChannelLink.created_at, ChannelLink.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def of_user_by_id(self, org_id: str, user_id: str | None, link_id: str) -> ChannelLink | None:
        return await self.session.scalar(
            select(ChannelLink).where(
                ChannelLink.id == link_id,
                ChannelLink.user_id == user_id,
                _in_org(ChannelLink, org_id),
            )
        )

    async def active_of_users(self, org_id: str, user_ids: Collection[str]) -> list[ChannelLink]:
        stmt = select(ChannelLink).where(
            _in_org(ChannelLink, org_id),
            ChannelLink.status == LinkStatus.ACTIVE,
            ChannelLink.user_id.in_(user_ids),
        )
        return list((await self.session.scalars(stmt)).all())

    async def active_at(self, channel: str, address: str, *, for_update: bool = False) -> ChannelLink | None:
        """The active link of an address (a chat id, a number) on a shared channel."""
        stmt = select(ChannelLink).where(
            ChannelLink.channel == channel,
            ChannelLink.address == address,
            ChannelLink.status == LinkStatus.ACTIVE,
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def pending_by_code_for_update(self, code_hash: str, now: datetime) -> ChannelLink | None:
        """The pending link whose code hashes to ``code_hash``, while the code works."""
        return await self.session.scalar(
            select(ChannelLink)
            .where(
                ChannelLink.code_hash == code_hash,
                ChannelLink.status == LinkStatus.PENDING,
                ChannelLink.code_expires_at > now,
            )
            .with_for_update()
        )

    async def end_active_at(self, channel: str, address: str, now: datetime) -> None:
        """The address's active link (if any) ends: back to pending, its code expired."""
        await self.session.execute(
            update(ChannelLink)
            .where(
                ChannelLink.channel == channel,
                ChannelLink.address == address,
                ChannelLink.status == LinkStatus.ACTIVE,
            )
            .values(status=LinkStatus.PENDING, code_expires_at=now)
        )


# --- the inbox ------------------------------------------------------------------------------------------

_EVENTS = cast(Table, ExternalEvent.__table__)
# Built once: building an INSERT with a dict value per request costs more than running it.
_STORE_EVENT = (
    insert(_EVENTS)
    .values(
        source=bindparam("source"),
        external_id=bindparam("external_id"),
        payload=bindparam("payload", type_=_EVENTS.c.payload.type),
    )
    .on_conflict_do_nothing()
    .returning(_EVENTS.c.external_id)
)

# The same insert as SQL for a statement that queues the event's job with it (``JobOutbox.defer_after``).
STORE_EVENT = (
    "INSERT INTO external_events (source, external_id, payload) "
    "VALUES (:source, :external_id, CAST(:payload AS jsonb)) ON CONFLICT DO NOTHING RETURNING external_id"
)


def event_row(source: str, external_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """:data:`STORE_EVENT`'s parameters."""
    return {"source": source, "external_id": external_id, "payload": json.dumps(payload)}


GRACE = "2 minutes"  # longer than storing an event and queueing its job ever takes

_LOST = text(
    f"""
    SELECT e.source, e.external_id FROM external_events e
    WHERE e.handled_at IS NULL AND e.received_at < now() - interval '{GRACE}'
      AND (e.source LIKE 'telegram:%' OR e.source = :whatsapp_source)  -- messages people sent
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE (j.task_name = :telegram_job
               AND 'telegram:' || (j.args ->> 'channel_id') = e.source
               AND j.args ->> 'update_id' = e.external_id)
           OR (j.task_name = :whatsapp_job AND e.source = :whatsapp_source
               AND j.args ->> 'message_sid' = e.external_id)
      )
    ORDER BY e.received_at LIMIT 500
    """  # noqa: S608 - GRACE is a constant; values are bound parameters
)


async def insert_event(
    db: AsyncSession | AsyncConnection, source: str, external_id: str, payload: dict[str, Any]
) -> bool:
    """Insert an inbound event; False when it is already there."""
    stored = await db.execute(
        _STORE_EVENT, {"source": source, "external_id": external_id, "payload": payload}
    )
    return stored.first() is not None


# An event's outcome (and, once handled, when), for a statement to carry: marking it costs no flush of the
# ORM's unit of work and, run alone, one round trip.
_EVENT_MARKED = (
    text(
        "UPDATE external_events SET outcome = :event_outcome, handled_at = :event_handled_at "
        "WHERE source = :event_source AND external_id = :event_external_id RETURNING external_id"
    )
    .columns()
    .cte("event_marked")
)


def event_marked(event: ExternalEvent, outcome: str | None, handled_at: datetime | None) -> Carried:
    return Carried(
        (_EVENT_MARKED,),
        params={
            "event_outcome": outcome,
            "event_handled_at": handled_at,
            "event_source": event.source,
            "event_external_id": event.external_id,
        },
    )


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def event_for_update(self, source: str, external_id: str) -> ExternalEvent | None:
        return await self.session.get(ExternalEvent, (source, external_id), with_for_update=True)

    async def lost_events(
        self, telegram_job: str, whatsapp_job: str, whatsapp_source: str
    ) -> list[tuple[str, str]]:
        """(source, external id) of unhandled events older than :data:`GRACE` that have no job, oldest first
        (500 at most)."""
        params = {
            "telegram_job": telegram_job,
            "whatsapp_job": whatsapp_job,
            "whatsapp_source": whatsapp_source,
        }
        rows = await self.session.execute(_LOST, params)
        return [(source, external_id) for source, external_id in rows]


# --- daily message counts -------------------------------------------------------------------------------

_COUNTED = (
    text(
        "INSERT INTO channel_usage_daily (agent_id, channel, day, org_id, inbound, outbound) VALUES "
        "(:count_agent_id, :count_channel, :count_day, :count_org_id, :count_inbound, :count_outbound) "
        "ON CONFLICT (agent_id, channel, day) DO UPDATE SET "
        "inbound = channel_usage_daily.inbound + EXCLUDED.inbound, "
        "outbound = channel_usage_daily.outbound + EXCLUDED.outbound RETURNING day"
    )
    .columns()
    .cte("channel_counted")
)


class ChannelUsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, org_id: str, agent_id: str, channel: str, day: date, *, inbound: int, outbound: int
    ) -> None:
        """Add to the day's counts (an upsert)."""
        stmt = insert(ChannelUsageDaily).values(
            agent_id=agent_id,
            channel=channel,
            day=day,
            org_id=org_id,
            inbound=inbound,
            outbound=outbound,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ChannelUsageDaily.agent_id, ChannelUsageDaily.channel, ChannelUsageDaily.day],
                set_={
                    "inbound": ChannelUsageDaily.inbound + stmt.excluded.inbound,
                    "outbound": ChannelUsageDaily.outbound + stmt.excluded.outbound,
                },
            )
        )

    @staticmethod
    def added_carried(
        org_id: str, agent_id: str, channel: str, day: date, *, inbound: int, outbound: int
    ) -> Carried:
        """:meth:`add` for another statement to carry."""
        return Carried(
            (_COUNTED,),
            params={
                "count_agent_id": agent_id,
                "count_channel": channel,
                "count_day": day,
                "count_org_id": org_id,
                "count_inbound": inbound,
                "count_outbound": outbound,
            },
        )

    async def since(self, agent_id: str, since: date) -> list[Row[date, str, int, int]]:
        """(day, channel, inbound, outbound) of the agent from ``since`` on, newest first."""
        rows = await self.session.execute(
            select(
                ChannelUsageDaily.day,
                ChannelUsageDaily.channel,
                ChannelUsageDaily.inbound,
                ChannelUsageDaily.outbound,
            )
            .where(ChannelUsageDaily.agent_id == agent_id, ChannelUsageDaily.day >= since)
            .order_by(ChannelUsageDaily.day.desc(), ChannelUsageDaily.channel)
        )
        return list(rows.all())


# --- voice sessions -------------------------------------------------------------------------------------


class VoiceSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, voice: VoiceSession) -> None:
        self.session.add(voice)

    async def running(self, org_id: str) -> list[VoiceSession]:
        """The org's sessions whose clock runs and counts against its time."""
        rows = await self.session.scalars(
            select(VoiceSession).where(
                _in_org(VoiceSession, org_id),
                VoiceSession.status == VoiceStatus.ACTIVE,
                VoiceSession.untracked.is_(False),
            )
        )
        return list(rows.all())

    async def page(self, org_id: str, skip: int, limit: int) -> tuple[list[VoiceSession], int]:
        base = select(VoiceSession).where(_in_org(VoiceSession, org_id))
        total = int(await self.session.scalar(select(func.count()).select_from(base.subquery())) or 0)
        rows = await self.session.scalars(
            base.order_by(VoiceSession.created_at.desc(), VoiceSession.id.desc()).offset(skip).limit(limit)
        )
        return list(rows.all()), total

    async def summary(self, org_id: str, since: datetime) -> tuple[int, int]:
        """(sessions that ran, their seconds) since ``since``."""
        row = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(VoiceSession.seconds), 0)).where(
                    _in_org(VoiceSession, org_id),
                    VoiceSession.started_at.is_not(None),
                    VoiceSession.started_at >= since,
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def by_room_for_update(self, room: str) -> VoiceSession | None:
        return await self.session.scalar(
            select(VoiceSession).where(VoiceSession.room == room).with_for_update()
        )

    async def open_for_update(self) -> list[VoiceSession]:
        """Sessions not ended yet, by org and start, skipping those another worker holds."""
        return list(
            await self.session.scalars(
                select(VoiceSession)
                .where(VoiceSession.status != VoiceStatus.ENDED)
                .order_by(VoiceSession.org_id, VoiceSession.started_at)
                .with_for_update(skip_locked=True)
            )
        )
