"""Every query on the files people send with their messages; org filtering lives here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from hutch.conversations.models import AttachmentKind, Conversation, MessageAttachment


class AttachmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, attachment: MessageAttachment) -> None:
        """Written with the transaction's next flush (a turn's phase 1, with the message it belongs to)."""
        self.session.add(attachment)

    async def of_messages(
        self, org_id: str, message_ids: Sequence[str]
    ) -> dict[str, list[MessageAttachment]]:
        """The attachments of these messages (without their bytes), by message id, oldest first."""
        if not message_ids:
            return {}
        rows = await self.session.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.org_id == org_id, MessageAttachment.message_id.in_(message_ids))
            .order_by(MessageAttachment.created_at, MessageAttachment.id)
        )
        found: dict[str, list[MessageAttachment]] = defaultdict(list)
        for row in rows:
            found[row.message_id].append(row)
        return dict(found)

    async def with_data_of_message(self, message_id: str) -> list[MessageAttachment]:
        """A message's attachments with their bytes: a turn resumed after phase 1 needs them again."""
        rows = await self.session.scalars(
            select(MessageAttachment)
            .options(undefer(MessageAttachment.data))
            .where(MessageAttachment.message_id == message_id)
            .order_by(MessageAttachment.created_at, MessageAttachment.id)
        )
        return list(rows)

    async def file_in_org(
        self, org_id: str, conversation_id: str, attachment_id: str
    ) -> MessageAttachment | None:
        """One attachment with its bytes, if it is the org's and belongs to that conversation."""
        return await self.session.scalar(
            select(MessageAttachment)
            .options(undefer(MessageAttachment.data))
            .where(
                MessageAttachment.org_id == org_id,
                MessageAttachment.conversation_id == conversation_id,
                MessageAttachment.id == attachment_id,
            )
        )

    async def file_of_end_user(
        self, agent_id: str, channel: str, end_user: str, attachment_id: str
    ) -> MessageAttachment | None:
        """One attachment with its bytes, if it was sent in one of this end user's conversations with the
        agent on that channel (a widget's visitor sees their own files, and no one else's)."""
        return await self.session.scalar(
            select(MessageAttachment)
            .options(undefer(MessageAttachment.data))
            .join(Conversation, Conversation.id == MessageAttachment.conversation_id)
            .where(
                MessageAttachment.id == attachment_id,
                MessageAttachment.org_id == Conversation.org_id,
                Conversation.agent_id == agent_id,
                Conversation.channel == channel,
                Conversation.end_user == end_user,
            )
        )

    async def transcribed_seconds(self, org_id: str, since: datetime, until: datetime | None = None) -> float:
        """Seconds of voice notes transcribed for the org from ``since`` (to ``until``): the usage the plan's
        ``transcription_minutes_per_month`` limits."""
        stmt = select(func.coalesce(func.sum(MessageAttachment.duration_seconds), 0)).where(
            MessageAttachment.org_id == org_id,
            MessageAttachment.kind == AttachmentKind.AUDIO,
            MessageAttachment.transcribed.is_(True),
            MessageAttachment.created_at >= since,
        )
        if until is not None:
            stmt = stmt.where(MessageAttachment.created_at < until)
        return float(await self.session.scalar(stmt) or 0)

    async def transcriptions(self, org_id: str, since: datetime, until: datetime | None = None) -> int:
        """How many voice notes were transcribed for the org in that time."""
        stmt = select(func.count()).where(
            MessageAttachment.org_id == org_id,
            MessageAttachment.kind == AttachmentKind.AUDIO,
            MessageAttachment.transcribed.is_(True),
            MessageAttachment.created_at >= since,
        )
        if until is not None:
            stmt = stmt.where(MessageAttachment.created_at < until)
        return int(await self.session.scalar(stmt) or 0)

    async def metadata_of_org(self, org_id: str) -> list[MessageAttachment]:
        """Every attachment of the org, without bytes (for its data export)."""
        rows = await self.session.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.org_id == org_id)
            .order_by(MessageAttachment.created_at, MessageAttachment.id)
        )
        return list(rows)
