"""Every query of the inbox: an org's conversations on every channel, their end users, who holds one, and the
messages an open event stream has not seen yet. The tenancy filter is :meth:`InboxRepository.readable`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, User
from hutch.conversations.end_users import EndUserProfile
from hutch.conversations.models import SEARCH_CONFIG, Conversation, ConversationStatus, EndUser, Message
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.carried import Carried, built_once


@dataclass(frozen=True)
class InboxFilter:
    agent_id: str | None = None
    channel: str | None = None
    status: ConversationStatus | None = None
    q: str | None = None
    since: datetime | None = None  # last activity at or after
    until: datetime | None = None  # last activity before


@dataclass(frozen=True)
class InboxRow:
    conversation: Conversation
    end_user: EndUser | None


def _activity() -> Any:
    return func.coalesce(Conversation.last_message_at, Conversation.created_at)


def _end_user_join() -> Any:
    return and_(
        EndUser.org_id == Conversation.org_id,
        EndUser.channel == Conversation.channel,
        EndUser.external_id == Conversation.end_user,
    )


def _matching(q: str, org_id: str) -> Any:
    """Conversations with a message matching ``q`` (web-search syntax), through the GIN index on the stored
    words (``Message.search``): a phrase is checked against their positions, not the text parsed again."""
    config: ColumnElement[Any] = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
    matches = Message.search.op("@@")(func.websearch_to_tsquery(config, q))
    return Conversation.id.in_(select(Message.conversation_id).where(Message.org_id == org_id, matches))


# Blocked end users are refused in a turn's admit phase: this column rides on the statement that stores
# the message (and reads the end user's facts), so the check costs no round trip of its own.
_BLOCKED = (
    select(
        exists().where(
            EndUser.org_id == bindparam("blocked_org_id"),
            EndUser.channel == bindparam("blocked_channel"),
            EndUser.external_id == bindparam("blocked_end_user"),
            EndUser.blocked_at.is_not(None),
        )
    )
    .scalar_subquery()
    .label("end_user_blocked")
)
# The end user's language as their channel last told it, for the model's instructions: on the same ride.
_LANGUAGE = (
    select(EndUser.language)
    .where(
        EndUser.org_id == bindparam("blocked_org_id"),
        EndUser.channel == bindparam("blocked_channel"),
        EndUser.external_id == bindparam("blocked_end_user"),
    )
    .scalar_subquery()
    .label("end_user_language")
)


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def readable(self, principal: Principal) -> Select[Any]:
        """The org's conversations, narrowed to the caller's agents when an API key is restricted."""
        stmt = select(Conversation).where(Conversation.org_id == principal.org_id)
        if principal.agent_ids is not None:
            stmt = stmt.where(Conversation.agent_id.in_(principal.agent_ids))
        return stmt

    def _filtered(self, principal: Principal, found: InboxFilter) -> Select[Any]:
        stmt = self.readable(principal)
        if found.agent_id is not None:
            stmt = stmt.where(Conversation.agent_id == found.agent_id)
        if found.channel is not None:
            stmt = stmt.where(Conversation.channel == found.channel)
        if found.status is ConversationStatus.CLOSED:
            stmt = stmt.where(Conversation.closed_at.is_not(None))
        elif found.status is not None:
            stmt = stmt.where(Conversation.closed_at.is_(None), Conversation.status == found.status)
        if found.since is not None:
            stmt = stmt.where(_activity() >= found.since)
        if found.until is not None:
            stmt = stmt.where(_activity() < found.until)
        if found.q:
            stmt = stmt.where(_matching(found.q, principal.org_id))
        return stmt

    async def page(
        self, principal: Principal, found: InboxFilter, skip: int, limit: int
    ) -> tuple[list[InboxRow], int]:
        """Newest activity first, with each conversation's end user; and how many match in all.

        A search is the costly part (every matching message is read to check a phrase): it runs once, the
        count riding on the page's rows as a window. Without one, the count is a separate, cheaper read
        (the window would hold every row of the org's conversations)."""
        filtered = self._filtered(principal, found)
        stmt = filtered.add_columns(EndUser)
        if found.q:
            stmt = stmt.add_columns(func.count().over().label("total"))
        stmt = (
            stmt.outerjoin(EndUser, _end_user_join())
            .order_by(_activity().desc(), Conversation.id)
            .offset(skip)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if found.q and (rows or skip == 0):
            total = int(rows[0][2]) if rows else 0
        else:
            total = int(await self.session.scalar(select(func.count()).select_from(filtered.subquery())) or 0)
        return [InboxRow(row[0], row[1]) for row in rows], total

    async def get(self, principal: Principal, conversation_id: str) -> InboxRow | None:
        stmt = (
            self.readable(principal)
            .add_columns(EndUser)
            .outerjoin(EndUser, _end_user_join())
            .where(Conversation.id == conversation_id)
        )
        row = (await self.session.execute(stmt)).first()
        return InboxRow(row[0], row[1]) if row is not None else None

    async def get_any(self, conversation_id: str) -> Conversation | None:
        """A conversation by id, whoever's: for a turn's own tools and commands, which know it already."""
        return await self.session.get(Conversation, conversation_id, populate_existing=True)

    async def messages(self, conversation_id: str, limit: int) -> list[Message]:
        """The newest ``limit`` messages, oldest first."""
        stmt = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.seq.desc())
            .limit(limit)
        )
        return list(reversed((await self.session.scalars(stmt)).all()))

    async def take_over(self, conversation_id: str, user_id: str, now: datetime) -> Conversation | None:
        """Hand the open conversation to ``user_id`` unless another member holds it, in one statement: of two
        members racing, the second waits for the first's row lock, then finds it held (None)."""
        stmt = (
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.closed_at.is_(None),
                or_(Conversation.taken_over_by.is_(None), Conversation.taken_over_by == user_id),
            )
            .values(
                status=ConversationStatus.TAKEN_OVER,
                taken_over_by=user_id,
                # Kept when the holder takes it again.
                taken_over_at=func.coalesce(
                    case((Conversation.taken_over_by == user_id, Conversation.taken_over_at)), now
                ),
            )
            .returning(Conversation)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_state(self, conversation_id: str, **values: Any) -> Conversation:
        stmt = (
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(**values)
            .returning(Conversation)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def flag_needs_human(self, conversation_id: str, now: datetime) -> Conversation | None:
        """Ask for a person on an open conversation the agent answers (a held one already has one)."""
        stmt = (
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.closed_at.is_(None))
            .where(Conversation.status != ConversationStatus.TAKEN_OVER)
            .values(status=ConversationStatus.NEEDS_HUMAN, needs_human_at=now)
            .returning(Conversation)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def member_names(self, org_id: str) -> dict[str, str]:
        """The org's members by id, as a conversation's page names who holds it and who wrote a reply."""
        stmt = (
            select(User.id, User.name, User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id)
        )
        return {uid: name or email for uid, name, email in (await self.session.execute(stmt)).all()}

    async def unseen(self, watched: Sequence[tuple[str, int]]) -> list[Message]:
        """Messages after each (conversation id, seq) pair, in order per conversation."""
        if not watched:
            return []
        params = {"watched_ids": [w[0] for w in watched], "watched_seqs": [w[1] for w in watched]}
        return list((await self.session.scalars(_UNSEEN_STATEMENT, params)).all())


# What open event streams have not seen: messages after the seq each one saw, for all of a process's
# streams in one statement (the unique index on conversation and seq finds them).
_WATCHED = (
    func.unnest(bindparam("watched_ids", type_=ARRAY(TEXT)), bindparam("watched_seqs", type_=ARRAY(BIGINT)))
    .table_valued("id", "seq")
    .render_derived(name="watched")
)
_UNSEEN_STATEMENT = (
    select(Message)
    .join(_WATCHED, and_(Message.conversation_id == _WATCHED.c.id, Message.seq > _WATCHED.c.seq))
    .order_by(Message.conversation_id, Message.seq)
)


# The table, not the mapped class: an insert from a select is a statement of its own, not the ORM's.
_END_USERS: Table = EndUser.__table__  # type: ignore[assignment]
# The end user :meth:`EndUserRepository.known` remembers, from its parameters.
_KNOWN_ADDRESS = select(
    bindparam("known_org_id", type_=EndUser.org_id.type),
    bindparam("known_channel", type_=EndUser.channel.type),
    bindparam("known_external_id", type_=EndUser.external_id.type),
)


def remember_end_user(source: Select[Any], replace: bool) -> Insert:
    """Remembers the end user whose org, channel and address ``source`` selects, with the name the
    ``known_*`` parameters give (:func:`known_params`); ``replace``: the name replaces a stored one."""
    stmt = insert(_END_USERS).from_select(
        ["org_id", "channel", "external_id", "id", "display_name", "username", "language"],
        source.add_columns(
            bindparam("known_id", type_=EndUser.id.type),
            bindparam("known_display_name", type_=EndUser.display_name.type),
            bindparam("known_username", type_=EndUser.username.type),
            bindparam("known_language", type_=EndUser.language.type),
        ),
    )
    identity = ["org_id", "channel", "external_id"]
    if not replace:
        return stmt.on_conflict_do_nothing(index_elements=identity)
    changed = {
        "display_name": stmt.excluded.display_name,
        "username": stmt.excluded.username,
        "language": func.coalesce(stmt.excluded.language, _END_USERS.c.language),
    }
    return stmt.on_conflict_do_update(index_elements=identity, set_=changed)


def known_params(profile: EndUserProfile) -> dict[str, Any]:
    """The parameters of :func:`remember_end_user` for ``profile``."""
    return {
        "known_id": new_id("eu"),
        "known_display_name": profile.display_name[:200],
        "known_username": profile.username[:200] if profile.username else None,
        "known_language": profile.language,
    }


class EndUserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def known(
        self, org_id: str, channel: str, external_id: str, profile: EndUserProfile, *, replace: bool
    ) -> None:
        """Remember who opened a conversation; ``replace``: with the name the channel gives now."""
        params = known_params(profile) | {
            "known_org_id": org_id,
            "known_channel": channel,
            "known_external_id": external_id,
        }
        statement = built_once(("known", replace), lambda: remember_end_user(_KNOWN_ADDRESS, replace))
        await self.session.execute(statement, params)

    async def get_in_org(self, org_id: str, end_user_id: str) -> EndUser | None:
        stmt = select(EndUser).where(EndUser.org_id == org_id, EndUser.id == end_user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_blocked(
        self, org_id: str, end_user_id: str, blocked_at: datetime | None, blocked_by: str | None
    ) -> EndUser | None:
        stmt = (
            update(EndUser)
            .where(EndUser.org_id == org_id, EndUser.id == end_user_id)
            .values(blocked_at=blocked_at, blocked_by=blocked_by)
            .returning(EndUser)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def note_limited(self, org_id: str, channel: str, end_user: str, note: str, at: datetime) -> None:
        """Note on the person that a per-person limit refused them (shown in the inbox)."""
        await self.session.execute(
            update(EndUser)
            .where(EndUser.org_id == org_id, EndUser.channel == channel, EndUser.external_id == end_user)
            .values(limited_at=at, limited_note=note)
        )

    async def is_blocked(self, org_id: str, channel: str, end_user: str) -> bool:
        """Whether the org blocked the end user on ``channel`` (before a turn: a voice token, say)."""
        read = await self.blocked_carried(org_id, channel, end_user).execute(self.session)
        return bool(read["end_user_blocked"])

    @staticmethod
    def blocked_carried(org_id: str, channel: str, end_user: str) -> Carried:
        """Whether the end user is blocked, and their language, as columns another statement carries
        (``end_user_blocked``, ``end_user_language``)."""
        return Carried(
            columns=(_BLOCKED, _LANGUAGE),
            params={"blocked_org_id": org_id, "blocked_channel": channel, "blocked_end_user": end_user},
        )
