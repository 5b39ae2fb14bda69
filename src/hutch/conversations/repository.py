"""Every query on conversations, messages and memories; org filtering lives here."""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Executable,
    Insert,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.end_users import EndUserProfile
from hutch.conversations.inbox_repository import known_params, remember_end_user
from hutch.conversations.models import (
    Conversation,
    ConversationStatus,
    Memory,
    MemoryKind,
    Message,
    MessageRole,
)
from hutch.core.ids import new_id
from hutch.db.carried import NOTHING, Carried, built_once

# Every turn runs these; they are built once (building a statement costs more than running it).
_OPEN_FOR = (
    select(Conversation)
    .where(
        Conversation.agent_id == bindparam("agent_id"),
        Conversation.channel == bindparam("channel"),
        Conversation.end_user == bindparam("end_user"),
        Conversation.closed_at.is_(None),
    )
    .with_for_update()
)
_NEWEST_FACTS = (
    select(Memory.content, Memory.created_at, Memory.id)
    .where(
        Memory.agent_id == bindparam("facts_agent_id"),
        Memory.end_user == bindparam("facts_end_user"),
        Memory.kind == MemoryKind.FACT,
    )
    .order_by(Memory.created_at.desc(), Memory.id.desc())
    .limit(bindparam("facts_limit"))
    .subquery()
)
# The newest facts, oldest first, as one array: a value other statements can carry (see ``Carried``).
_FACTS = (
    select(
        func.array_agg(
            aggregate_order_by(_NEWEST_FACTS.c.content, _NEWEST_FACTS.c.created_at, _NEWEST_FACTS.c.id)
        )
    )
    .scalar_subquery()
    .label("facts")
)

CONVERSATIONS: Table = Conversation.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
# The columns an insert writes: PostgreSQL computes the generated ones (the search words) itself.
_WRITTEN = [c for c in MESSAGES.columns if c.computed is None]


def _count_message(*where: ColumnElement[bool]) -> Update:
    """Counts a message on the conversation matched, taking its row lock until the transaction ends.

    Parameters are named apart from the columns (``value_*``): an insert would take parameters named like its
    columns as its values."""
    return (
        update(CONVERSATIONS)
        .where(*where)
        .values(
            message_count=CONVERSATIONS.c.message_count + 1,
            last_message_at=bindparam("value_created_at"),
            title=func.coalesce(func.nullif(CONVERSATIONS.c.title, ""), bindparam("value_title_if_none")),
        )
    )


def _insert_counted(counted: CTE, from_conversation: dict[str, str]) -> Insert:
    """Inserts the message with the count as its ``seq``; ``from_conversation`` maps message columns to the
    counted row's columns, the rest come from ``value_*`` parameters."""
    given = [c for c in _WRITTEN if c.key != "seq" and c.key not in from_conversation]
    return insert(MESSAGES).from_select(
        [*(c.key for c in given), *from_conversation, "seq"],
        select(
            *(bindparam(f"value_{c.key}", type_=c.type) for c in given),
            *(counted.c[name] for name in from_conversation.values()),
            counted.c.message_count,
        ),
    )


# Appends to a conversation already read: counts it, inserts the message, returns its seq.
APPEND_MESSAGE = _insert_counted(
    _count_message(CONVERSATIONS.c.id == bindparam("value_conversation_id"))
    .returning(CONVERSATIONS.c.message_count)
    .cte("counted"),
    {},
).returning(MESSAGES.c.seq)
# Appends to the end user's open conversation without reading it first, and returns the conversation (no
# row when there is none yet): most messages take this one statement.
_OPEN_COUNTED = (
    _count_message(
        CONVERSATIONS.c.agent_id == bindparam("value_agent_id"),
        CONVERSATIONS.c.channel == bindparam("value_channel"),
        CONVERSATIONS.c.end_user == bindparam("value_end_user"),
        CONVERSATIONS.c.closed_at.is_(None),
    )
    .returning(*CONVERSATIONS.columns)
    .cte("counted")
)
_FROM_OPEN = {"org_id": "org_id", "conversation_id": "id", "channel": "channel"}
# Opens the end user's conversation, the message counted as its first, when the count above found none
# open. No row when another request opened one a moment ago: the caller then takes the slow way.
_OPENED = (
    pg_insert(CONVERSATIONS)
    .from_select(
        [
            "id",
            "org_id",
            "agent_id",
            "channel",
            "end_user",
            "title",
            "message_count",
            "last_message_at",
            "status",
        ],
        select(
            bindparam("open_id", type_=CONVERSATIONS.c.id.type),
            bindparam("open_org_id", type_=CONVERSATIONS.c.org_id.type),
            bindparam("value_agent_id", type_=CONVERSATIONS.c.agent_id.type),
            bindparam("value_channel", type_=CONVERSATIONS.c.channel.type),
            bindparam("value_end_user", type_=CONVERSATIONS.c.end_user.type),
            bindparam("value_title_if_none", type_=CONVERSATIONS.c.title.type),
            literal(1, Integer),
            bindparam("value_created_at", type_=CONVERSATIONS.c.last_message_at.type),
            literal(ConversationStatus.OPEN, CONVERSATIONS.c.status.type),
        ).where(~exists(select(_OPEN_COUNTED.c.id))),
    )
    .on_conflict_do_nothing(
        index_elements=["agent_id", "channel", "end_user"], index_where=CONVERSATIONS.c.closed_at.is_(None)
    )
    .returning(*CONVERSATIONS.columns)
    .cte("opened")
)
# The conversation the message goes to, with the message counted: the open one, or the one it opened.
_TO_OPEN = union_all(select(_OPEN_COUNTED), select(_OPENED)).cte("conversation")
_ADDED_TO_OPEN = _insert_counted(_TO_OPEN, _FROM_OPEN).cte("added")
# The conversation's summary (of its older messages) and the last message it covers, for the prompt: read
# by the statement that stores the message (none for a conversation it opens).
_SUMMARY = (Memory.conversation_id == _TO_OPEN.c.id, Memory.kind == MemoryKind.SUMMARY)
_SUMMARY_COLUMNS = (
    select(Memory.content).where(*_SUMMARY).scalar_subquery().label("summary"),
    select(Memory.covers_until_seq).where(*_SUMMARY).scalar_subquery().label("summary_covers"),
)


def _append_to_open(carried: Carried, replace: bool) -> Executable:
    """Appends to the end user's open conversation, or opens one (the end user remembered; with
    ``replace``, their name replaces the one stored), carrying what ``carried`` holds; rows are the
    conversation and the carried columns."""

    def build() -> Executable:
        opener = select(_OPENED.c.org_id, _OPENED.c.channel, _OPENED.c.end_user)
        known = remember_end_user(opener, replace).cte("known")
        columns = (*_SUMMARY_COLUMNS, *carried.columns)
        carrier = select(_TO_OPEN, *columns).add_cte(_ADDED_TO_OPEN, known, *carried.ctes)
        return (
            select(Conversation, *columns).from_statement(carrier).execution_options(populate_existing=True)
        )

    return built_once(("append_to_open", replace, carried.ctes, carried.columns), build)


def _values(message: Message, title_if_none: str, exclude: Container[str] = ()) -> dict[str, Any]:
    """The ``value_*`` parameters of the append statements for ``message``."""
    values = {
        f"value_{c.key}": getattr(message, c.key) for c in _WRITTEN if c.key != "seq" and c.key not in exclude
    }
    values["value_title_if_none"] = title_if_none
    return values


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_in_org(
        self, org_id: str, conversation_id: str, *, for_update: bool = False
    ) -> Conversation | None:
        stmt = select(Conversation).where(Conversation.org_id == org_id, Conversation.id == conversation_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_open(self, conversation: Conversation) -> bool:
        """Insert ``conversation`` (every column set) as the end user's open one, in one statement; False,
        inserting nothing, when another is open already (opened by a request a moment ago)."""
        values = {column.key: getattr(conversation, column.key) for column in Conversation.__table__.columns}
        stmt = (
            pg_insert(Conversation)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=["agent_id", "channel", "end_user"],
                index_where=Conversation.closed_at.is_(None),
            )
            .returning(Conversation.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def open_for(self, agent_id: str, channel: str, end_user: str) -> Conversation | None:
        params = {"agent_id": agent_id, "channel": channel, "end_user": end_user}
        return (await self.session.execute(_OPEN_FOR, params)).scalar_one_or_none()

    def of_agent(self, org_id: str, agent_id: str) -> Select[Conversation]:
        return select(Conversation).where(Conversation.org_id == org_id, Conversation.agent_id == agent_id)

    async def page_of_agent(
        self, org_id: str, agent_id: str, skip: int, limit: int
    ) -> tuple[list[Conversation], int]:
        stmt = self.of_agent(org_id, agent_id)
        total = int(await self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        ordered = stmt.order_by(
            func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(), Conversation.id
        )
        rows = await self.session.scalars(ordered.offset(skip).limit(limit))
        return list(rows.all()), total


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append_to_open(
        self,
        message: Message,
        title_if_none: str,
        agent_id: str,
        channel: str,
        end_user: str,
        profile: EndUserProfile,
        *,
        replace: bool,
        carrying: Carried = NOTHING,
    ) -> tuple[Conversation, dict[str, Any]] | None:
        """Append ``message`` to the end user's open conversation, else open one with it (the end user
        remembered as ``profile`` names them, replacing the name stored with ``replace``), in one statement
        that carries ``carrying``: the conversation and the carried columns' values, with the conversation's
        summary (``summary``, ``summary_covers``: the last message it covers). None when another request
        opened a conversation meanwhile: nothing was written."""
        values = _values(message, title_if_none, exclude=_FROM_OPEN)
        values |= {"value_agent_id": agent_id, "value_channel": channel, "value_end_user": end_user}
        values |= {"open_id": new_id("cnv"), "open_org_id": message.org_id, **known_params(profile)}
        statement = _append_to_open(carrying, replace)
        row = (await self.session.execute(statement, {**values, **carrying.params})).first()
        if row is None:
            return None
        return row[0], {"summary": row.summary, "summary_covers": row.summary_covers, **carrying.values(row)}

    async def append(self, message: Message, title_if_none: str, carrying: Carried = NOTHING) -> int:
        """Insert ``message`` counted on its conversation (its row locked until the transaction ends), with
        ``carrying``, in one statement; its ``seq``."""
        params = {**_values(message, title_if_none), **carrying.params}
        seq: int = (await self.session.execute(carrying.carried_by(APPEND_MESSAGE), params)).scalar_one()
        return seq

    async def recent(
        self, conversation_id: str, limit: int, *, before_seq: int | None = None
    ) -> list[Message]:
        """The last ``limit`` messages (before the one numbered ``before_seq``), oldest first."""
        stmt = select(Message).where(Message.conversation_id == conversation_id)
        if before_seq is not None:
            stmt = stmt.where(Message.seq < before_seq)
        stmt = stmt.order_by(Message.seq.desc()).limit(limit)
        return list(reversed((await self.session.scalars(stmt)).all()))

    async def answered_after(self, conversation_id: str, seq: int) -> bool:
        """Whether an answer follows the message numbered ``seq``."""
        stmt = select(Message.id).where(
            Message.conversation_id == conversation_id,
            Message.seq > seq,
            Message.role == MessageRole.ASSISTANT,
        )
        return await self.session.scalar(stmt.limit(1)) is not None

    async def between(self, conversation_id: str, after_seq: int, until_seq: int) -> list[Message]:
        stmt = (
            select(Message)
            .where(
                Message.conversation_id == conversation_id, Message.seq > after_seq, Message.seq <= until_seq
            )
            .order_by(Message.seq)
        )
        return list((await self.session.scalars(stmt)).all())

    async def page(self, conversation_id: str, skip: int, limit: int) -> tuple[list[Message], int]:
        base = select(Message).where(Message.conversation_id == conversation_id)
        total = int(await self.session.scalar(select(func.count()).select_from(base.subquery())) or 0)
        rows = await self.session.scalars(base.order_by(Message.seq).offset(skip).limit(limit))
        return list(rows.all()), total


class MemoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_fact(self, org_id: str, agent_id: str, end_user: str, content: str) -> Memory:
        memory = Memory(
            id=new_id("mem"),
            org_id=org_id,
            agent_id=agent_id,
            end_user=end_user,
            kind=MemoryKind.FACT,
            content=content,
        )
        self.session.add(memory)
        await self.session.flush()
        return memory

    async def facts(self, agent_id: str, end_user: str, limit: int) -> list[str]:
        """The newest ``limit`` facts, oldest first."""
        read = await self.facts_carried(agent_id, end_user, limit).execute(self.session)
        return list(read["facts"] or [])

    @staticmethod
    def facts_carried(agent_id: str, end_user: str, limit: int) -> Carried:
        """:meth:`facts` as a column another statement carries (an array, NULL when there are none)."""
        return Carried(
            columns=(_FACTS,),
            params={"facts_agent_id": agent_id, "facts_end_user": end_user, "facts_limit": limit},
        )

    async def count_facts(self, agent_id: str, end_user: str) -> int:
        stmt = (
            select(func.count())
            .select_from(Memory)
            .where(Memory.agent_id == agent_id, Memory.end_user == end_user, Memory.kind == MemoryKind.FACT)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def trim_facts(self, agent_id: str, end_user: str, keep: int) -> None:
        newest = (
            select(Memory.id)
            .where(Memory.agent_id == agent_id, Memory.end_user == end_user, Memory.kind == MemoryKind.FACT)
            .order_by(Memory.created_at.desc(), Memory.id.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(Memory).where(
                Memory.agent_id == agent_id,
                Memory.end_user == end_user,
                Memory.kind == MemoryKind.FACT,
                Memory.id.not_in(newest),
            )
        )

    async def forget_facts(self, agent_id: str, end_user: str, words: str) -> int:
        if not words:
            return 0
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        result = await self.session.execute(
            delete(Memory)
            .where(
                Memory.agent_id == agent_id,
                Memory.end_user == end_user,
                Memory.kind == MemoryKind.FACT,
                Memory.content.ilike(pattern, escape="\\"),
            )
            .returning(Memory.id)
        )
        return len(result.all())

    async def summary_of(self, conversation_id: str, *, for_update: bool = False) -> Memory | None:
        stmt = select(Memory).where(
            Memory.conversation_id == conversation_id, Memory.kind == MemoryKind.SUMMARY
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_agent_user(self, org_id: str, agent_id: str, end_user: str | None) -> list[Memory]:
        stmt = select(Memory).where(Memory.org_id == org_id, Memory.agent_id == agent_id)
        if end_user is not None:
            stmt = stmt.where(Memory.end_user == end_user)
        return list((await self.session.scalars(stmt.order_by(Memory.created_at, Memory.id))).all())

    async def delete_in_org(self, org_id: str, agent_id: str, memory_id: str) -> bool:
        result = await self.session.execute(
            delete(Memory)
            .where(Memory.org_id == org_id, Memory.agent_id == agent_id, Memory.id == memory_id)
            .returning(Memory.id)
        )
        return result.first() is not None


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def messages_this_month(self, org_id: str, now: datetime) -> int:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        stmt = (
            select(func.count())
            .select_from(Message)
            .where(
                Message.org_id == org_id, Message.role == MessageRole.ASSISTANT, Message.created_at >= start
            )
        )
        return int(await self.session.scalar(stmt) or 0)


async def close_conversation(session: AsyncSession, conversation: Conversation, now: datetime) -> None:
    await session.execute(
        update(Conversation).where(Conversation.id == conversation.id).values(closed_at=now)
    )
    conversation.closed_at = now


class MemoryListing:
    """An agent's memories grouped by end user, for the people who look after the agent."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def end_users(self, org_id: str, agent_id: str, limit: int) -> list[tuple[str, int, int, datetime]]:
        """(end user, facts, summaries, newest memory's time), most recent first."""
        facts = func.count().filter(Memory.kind == MemoryKind.FACT)
        summaries = func.count().filter(Memory.kind == MemoryKind.SUMMARY)
        newest = func.max(Memory.created_at)
        rows = await self.session.execute(
            select(Memory.end_user, facts, summaries, newest)
            .where(Memory.org_id == org_id, Memory.agent_id == agent_id)
            .group_by(Memory.end_user)
            .order_by(newest.desc(), Memory.end_user)
            .limit(limit)
        )
        return [(end_user, int(f), int(s), at) for end_user, f, s, at in rows.all()]

    async def delete_of_end_user(self, org_id: str, agent_id: str, end_user: str) -> int:
        result = await self.session.execute(
            delete(Memory)
            .where(Memory.org_id == org_id, Memory.agent_id == agent_id, Memory.end_user == end_user)
            .returning(Memory.id)
        )
        return len(result.all())
