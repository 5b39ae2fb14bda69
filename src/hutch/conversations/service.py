"""Conversations and messages: opening one per agent, channel and end user, adding messages, resetting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hutch.agents.models import Agent
from hutch.conversations.end_users import EndUserProfile, default_profile
from hutch.conversations.inbox_repository import EndUserRepository
from hutch.conversations.models import Conversation, ConversationStatus, Message, MessageRole, MessageStatus
from hutch.conversations.repository import ConversationRepository, MessageRepository, close_conversation
from hutch.core.errors import NotFound
from hutch.core.ids import new_id
from hutch.db.carried import NOTHING, Carried

TITLE_CHARS = 80

COMPACT_JOB = "conversations.compact"  # folds a long thread's older messages into its summary


# Every column a new message has, so the session never needs to load one back.
MESSAGE_DEFAULTS: dict[str, Any] = {
    "tool_calls": [],
    "model": None,
    "input_tokens": 0,
    "output_tokens": 0,
    "cost_micro_usd": 0,
    "byok": False,
    "error": None,
    "author_id": None,
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
        profile: EndUserProfile | None = None,
    ) -> Conversation:
        """The named conversation (it must be this agent's), else the open one for this end user (opened if
        none; then the end user is remembered, as ``profile`` names them when the channel told)."""
        if conversation_id is not None:
            found = await self.conversations.get_in_org(agent.org_id, conversation_id, for_update=True)
            if found is None or found.agent_id != agent.id:
                raise NotFound("Conversation")
            return found
        existing = await self.conversations.open_for(agent.id, channel, end_user)
        return existing if existing is not None else await self._open_new(agent, channel, end_user, profile)

    async def _open_new(
        self, agent: Agent, channel: str, end_user: str, profile: EndUserProfile | None
    ) -> Conversation:
        """A new open conversation for the end user, who is then remembered (as ``profile`` names them when
        the channel told); the one another request opened a moment ago, if it did."""
        conversation = Conversation(
            id=new_id("cnv"),
            org_id=agent.org_id,
            agent_id=agent.id,
            channel=channel,
            end_user=end_user,
            title="",
            message_count=0,
            last_message_at=None,
            closed_at=None,
            status=ConversationStatus.OPEN,
            taken_over_by=None,
            taken_over_at=None,
            needs_human_at=None,
            created_at=datetime.now(UTC),
        )
        if not await self.conversations.insert_open(conversation):
            raced = await self.conversations.open_for(agent.id, channel, end_user)
            if raced is None:  # opened and closed again in the meantime: a new one after all
                return await self._open_new(agent, channel, end_user, profile)
            return raced
        make_transient_to_detached(conversation)  # every column is set: tracked as loaded, nothing to flush
        self.session.add(conversation)
        await EndUserRepository(self.session).known(
            agent.org_id,
            channel,
            end_user,
            profile or default_profile(channel, end_user),
            replace=profile is not None,
        )
        return conversation

    async def add_user_message(
        self,
        agent: Agent,
        channel: str,
        end_user: str,
        text: str,
        conversation_id: str | None = None,
        *,
        carrying: Carried = NOTHING,
        profile: EndUserProfile | None = None,
    ) -> tuple[Conversation, Message, dict[str, Any] | None]:
        """Store what the end user said in the named conversation, else in their open one (opened if none).

        Messages go to (or open) the end user's conversation in one statement, which carries ``carrying``;
        the third item is then the carried columns' values. It is None when the message took another way (a
        named conversation, one opened by another request meanwhile), and then nothing carried ran: the
        caller does that work itself."""
        if conversation_id is None:
            message = _new_message(agent.org_id, channel, MessageRole.USER, text, MessageStatus.OK, {})
            appended = await self.messages.append_to_open(
                message,
                _title(message.role, message.content),
                agent.id,
                channel,
                end_user,
                profile or default_profile(channel, end_user),
                replace=profile is not None,
                carrying=carrying,
            )
            if appended is not None:
                conversation, carried = appended
                message.conversation_id = conversation.id
                self._stored(message, conversation.message_count)
                return conversation, message, carried
            # Another request opened the end user's conversation a moment ago: the message goes to it.
            conversation = await self.open(agent, channel, end_user, None, profile)
        else:
            conversation = await self.open(agent, channel, end_user, conversation_id, profile)
        return conversation, await self.add(conversation, MessageRole.USER, text), None

    async def add(
        self,
        conversation: Conversation,
        role: MessageRole,
        content: str,
        *,
        status: MessageStatus = MessageStatus.OK,
        carrying: Carried = NOTHING,
        **fields: Any,
    ) -> Message:
        """Append a message in one statement: counting it locks the conversation's row until the transaction
        ends, so ``seq`` never collides, even with messages that arrived since ``conversation`` was read.

        ``carrying``: writes that go with the message in the same statement (the usage an answer counts)."""
        message = _new_message(conversation.org_id, conversation.channel, role, content, status, fields)
        message.conversation_id = conversation.id
        seq = await self.messages.append(message, _title(message.role, message.content), carrying)
        self._stored(message, seq)
        counts = {
            "message_count": seq,
            "last_message_at": message.created_at,
            "title": conversation.title or _title(role, content),
        }
        for key, value in counts.items():
            set_committed_value(conversation, key, value)
        return message

    def _stored(self, message: Message, seq: int) -> None:
        """Track a message a statement inserted as if the session had loaded it (no flush, no read back)."""
        message.seq = seq
        make_transient_to_detached(message)
        self.session.add(message)

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


def _title(role: MessageRole, content: str) -> str:
    """A conversation is titled by its first user message."""
    return " ".join(content.split())[:TITLE_CHARS] if role is MessageRole.USER else ""


def _new_message(
    org_id: str, channel: str, role: MessageRole, content: str, status: MessageStatus, fields: dict[str, Any]
) -> Message:
    return Message(
        id=new_id("msg"),
        org_id=org_id,
        channel=channel,
        role=role,
        content=content,
        status=status,
        created_at=datetime.now(UTC),
        **{**MESSAGE_DEFAULTS, **fields},
    )
