"""Conversations and messages: opening one per agent, channel and end user, adding messages, resetting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hutch.agents.models import Agent
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.conversations.repository import ConversationRepository, MessageRepository, close_conversation
from hutch.core.errors import NotFound
from hutch.core.ids import new_id

TITLE_CHARS = 80
CONVERSATIONS: Table = Conversation.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
# Counts the message on its conversation (locking the row) and inserts it with the new count as its seq.
_COUNTED = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("value_conversation_id"))
    .values(
        message_count=CONVERSATIONS.c.message_count + 1,
        last_message_at=bindparam("value_created_at"),
        title=func.coalesce(func.nullif(CONVERSATIONS.c.title, ""), bindparam("value_title_if_none")),
    )
    .returning(CONVERSATIONS.c.message_count.label("seq"))
    .cte("counted")
)
_NEW_MESSAGE_COLUMNS = [c for c in MESSAGES.columns if c.key != "seq"]
APPEND_MESSAGE = (
    insert(MESSAGES)
    .from_select(
        [*(c.key for c in _NEW_MESSAGE_COLUMNS), "seq"],
        # Named apart from the columns: an insert would take parameters named like its columns as values.
        select(*(bindparam(f"value_{c.key}", type_=c.type) for c in _NEW_MESSAGE_COLUMNS), _COUNTED.c.seq),
    )
    .returning(MESSAGES.c.seq)
)
# Every column a new message has, so the session never needs to load one back.
MESSAGE_DEFAULTS: dict[str, Any] = {
    "tool_calls": [],
    "model": None,
    "input_tokens": 0,
    "output_tokens": 0,
    "cost_micro_usd": 0,
    "byok": False,
    "error": None,
}


class ConversationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.conversations = ConversationRepository(session)
        self.messages = MessageRepository(session)

    async def open(
        self,
        agent: Agent,
        channel: str,
        end_user: str,
        conversation_id: str | None = None,
        *,
        fresh: bool = False,
    ) -> Conversation:
        """The named conversation (it must be this agent's), else the open one for this end user.

        ``fresh`` starts a new conversation each time (API calls without a conversation id), closing none.
        """
        if conversation_id is not None:
            found = await self.conversations.get_in_org(agent.org_id, conversation_id, for_update=True)
            if found is None or found.agent_id != agent.id:
                raise NotFound("Conversation")
            return found
        existing = await self.conversations.open_for(agent.id, channel, end_user)
        if existing is not None:
            return existing
        conversation = Conversation(
            id=new_id("cnv"),
            org_id=agent.org_id,
            agent_id=agent.id,
            channel=channel,
            end_user=end_user,
            title="",
            message_count=0,
        )
        try:
            async with self.session.begin_nested():
                self.session.add(conversation)
                await self.session.flush()
        except IntegrityError:
            # Another request opened it a moment ago (the partial unique index): use that one.
            raced = await self.conversations.open_for(agent.id, channel, end_user)
            if raced is None:
                raise
            return raced
        return conversation

    async def add(
        self,
        conversation: Conversation,
        role: MessageRole,
        content: str,
        *,
        status: MessageStatus = MessageStatus.OK,
        **fields: Any,
    ) -> Message:
        """Append a message in one statement: counting it locks the conversation's row until the transaction
        ends, so ``seq`` never collides, even with messages that arrived since ``conversation`` was read."""
        now = datetime.now(UTC)
        title = " ".join(content.split())[:TITLE_CHARS] if role is MessageRole.USER else ""
        message = Message(
            id=new_id("msg"),
            org_id=conversation.org_id,
            conversation_id=conversation.id,
            channel=conversation.channel,
            role=role,
            content=content,
            status=status,
            created_at=now,
            **{**MESSAGE_DEFAULTS, **fields},
        )
        values = {f"value_{c.key}": getattr(message, c.key) for c in _NEW_MESSAGE_COLUMNS}
        values["value_title_if_none"] = title
        seq = (await self.session.execute(APPEND_MESSAGE, values)).scalar_one()
        message.seq = seq
        # Stored already: the session tracks the message from here as if it had loaded it.
        make_transient_to_detached(message)
        self.session.add(message)
        counts = {"message_count": seq, "last_message_at": now, "title": conversation.title or title}
        for key, value in counts.items():
            set_committed_value(conversation, key, value)
        return message

    async def get(self, org_id: str, agent_id: str, conversation_id: str) -> Conversation:
        conversation = await self.conversations.get_in_org(org_id, conversation_id)
        if conversation is None or conversation.agent_id != agent_id:
            raise NotFound("Conversation")
        return conversation

    async def reset(self, org_id: str, agent_id: str, conversation_id: str) -> Conversation:
        """Close the conversation: the next message from that end user starts a new one."""
        conversation = await self.get(org_id, agent_id, conversation_id)
        if conversation.closed_at is None:
            await close_conversation(self.session, conversation, datetime.now(UTC))
        return conversation

    async def reset_open(self, agent: Agent, channel: str, end_user: str) -> bool:
        """Close the end user's open conversation on a channel (a /reset command); False when none."""
        existing = await self.conversations.open_for(agent.id, channel, end_user)
        if existing is None:
            return False
        await close_conversation(self.session, existing, datetime.now(UTC))
        return True
