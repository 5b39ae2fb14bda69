"""Conversations and messages: opening one per agent, channel and end user, adding messages, resetting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.conversations.repository import ConversationRepository, MessageRepository, close_conversation
from hutch.core.errors import NotFound
from hutch.core.ids import new_id

TITLE_CHARS = 80


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
        """Append a message; the conversation row is locked by ``open``, so ``seq`` never collides."""
        conversation.message_count += 1
        now = datetime.now(UTC)
        conversation.last_message_at = now
        if not conversation.title and role is MessageRole.USER:
            conversation.title = " ".join(content.split())[:TITLE_CHARS]
        message = Message(
            id=new_id("msg"),
            org_id=conversation.org_id,
            conversation_id=conversation.id,
            channel=conversation.channel,
            seq=conversation.message_count,
            role=role,
            content=content,
            status=status,
            created_at=now,
            **fields,
        )
        self.session.add(message)
        await self.session.flush()
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
