"""The inbox: every conversation of an org's agents on every channel, and the people who step in.

A member takes a conversation over (one member at a time), answers the end user through the conversation's
channel, then hands it back to the agent, whose history then holds the member's messages. An end user may ask
for a person (``/human`` on Telegram, or the agent's ``handoff_to_human`` tool): the conversation is flagged
and the org's owners are told. A blocked end user gets no answer and costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from hutch.agents.models import Agent
from hutch.conversations.attachments import attachments_out
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.end_users import EndUserProfile, default_profile
from hutch.conversations.inbox_repository import EndUserRepository, InboxFilter, InboxRepository, InboxRow
from hutch.conversations.models import (
    Conversation,
    ConversationStatus,
    EndUser,
    Message,
    MessageAttachment,
    MessageRole,
)
from hutch.conversations.schemas import (
    EndUserOut,
    EndUserRef,
    InboxConversation,
    InboxItem,
    InboxList,
    InboxMessage,
)
from hutch.conversations.service import ConversationService
from hutch.core.errors import Conflict, Forbidden, NotFound
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources

HUMAN_REPLY_JOB = "channels.deliver_human_reply"  # run by the channels domain, which reaches the chats
NEEDS_HUMAN_JOB = "conversations.needs_human_notice"
MESSAGES_SHOWN = 500  # the newest messages a conversation's page and export show
HUMAN_ASKED = "I have asked a person from the team to join; they will answer you here as soon as they can."
ALREADY_WITH_HUMAN = "A person from the team is already on this conversation and will answer you here."


class HeldByAnother(Conflict):
    def __init__(self) -> None:
        super().__init__("Another member has taken this conversation over; they must release it first.")


class NotHolding(Conflict):
    def __init__(self) -> None:
        super().__init__("Take this conversation over before replying or releasing it.")


class ConversationClosed(Conflict):
    def __init__(self) -> None:
        super().__init__("This conversation is closed; reopen it first.")


class TakenOver(Conflict):
    """A turn on a conversation a member holds: the message is kept, the agent does not answer."""

    def __init__(self) -> None:
        super().__init__("A person has taken this conversation over; your message is kept for them.")


class EndUserBlocked(Forbidden):
    def __init__(self) -> None:
        super().__init__("This end user is blocked; the agent does not answer them.")


def end_user_ref(conversation: Conversation, end_user: EndUser | None) -> EndUserRef:
    if end_user is None:
        return EndUserRef(
            id=None, display_name=default_profile(conversation.channel, conversation.end_user).display_name
        )
    name = end_user.display_name
    if name == end_user.external_id:  # recorded before the channel told more: shown the channel's way
        name = default_profile(end_user.channel, end_user.external_id).display_name
    return EndUserRef(
        id=end_user.id,
        display_name=name,
        username=end_user.username,
        blocked=end_user.blocked_at is not None,
        limited_at=end_user.limited_at,
        limited_note=end_user.limited_note,
    )


def inbox_item(row: InboxRow) -> InboxItem:
    c = row.conversation
    return InboxItem(
        id=c.id,
        agent_id=c.agent_id,
        channel=c.channel,
        end_user=end_user_ref(c, row.end_user),
        status=c.shown_status,
        title=c.title,
        last_message_at=c.last_message_at,
        message_count=c.message_count,
        created_at=c.created_at,
        taken_over_by=c.taken_over_by if c.closed_at is None else None,
    )


def inbox_message(message: Message) -> InboxMessage:
    return InboxMessage.model_validate(message, from_attributes=True)


class InboxService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.inbox = InboxRepository(uow.session)
        self.end_users = EndUserRepository(uow.session)
        self.conversations = ConversationService(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> InboxService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow)

    # --- reading -----------------------------------------------------------------------------------------

    async def page(self, principal: Principal, found: InboxFilter, skip: int, limit: int) -> InboxList:
        rows, total = await self.inbox.page(principal, found, skip, limit)
        return InboxList(items=[inbox_item(row) for row in rows], total=total)

    async def _row(self, principal: Principal, conversation_id: str) -> InboxRow:
        row = await self.inbox.get(principal, conversation_id)
        if row is None:
            raise NotFound("Conversation")
        return row

    async def item(self, principal: Principal, conversation_id: str) -> InboxItem:
        return inbox_item(await self._row(principal, conversation_id))

    async def get(self, principal: Principal, conversation_id: str) -> InboxConversation:
        row = await self._row(principal, conversation_id)
        messages = await self.inbox.messages(row.conversation.id, MESSAGES_SHOWN)
        files = await AttachmentRepository(self.uow.session).of_messages(
            row.conversation.org_id, [m.id for m in messages]
        )
        shown = []
        for m in messages:
            message = inbox_message(m)
            message.attachments = attachments_out(files, m.id)
            shown.append(message)
        return InboxConversation(**inbox_item(row).model_dump(), messages=shown)

    async def attachment(
        self, principal: Principal, conversation_id: str, attachment_id: str
    ) -> MessageAttachment:
        """A file sent in one of the org's conversations, with its bytes; another org's is not found."""
        row = await self._row(principal, conversation_id)
        found = await AttachmentRepository(self.uow.session).file_in_org(
            row.conversation.org_id, row.conversation.id, attachment_id
        )
        if found is None:
            raise NotFound("Attachment")
        return found

    async def member_names(self, principal: Principal) -> dict[str, str]:
        """The org's members by id: who holds a conversation, who wrote a reply."""
        return await self.inbox.member_names(principal.org_id)

    async def export_json(self, principal: Principal, conversation_id: str) -> str:
        return (await self.get(principal, conversation_id)).model_dump_json(indent=2)

    async def export_text(self, principal: Principal, conversation_id: str) -> str:
        shown = await self.get(principal, conversation_id)
        speaker = {"user": shown.end_user.display_name, "assistant": "Agent", "human": "Team"}
        lines = [
            f"Conversation {shown.id} on {shown.channel} with {shown.end_user.display_name}",
            f"Status: {shown.status.value}, {shown.message_count} messages",
            "",
        ]
        for m in shown.messages:
            lines.append(f"[{m.created_at:%Y-%m-%d %H:%M:%S}] {speaker[m.role.value]}: {m.content}")
        return "\n".join(lines) + "\n"

    # --- taking over -------------------------------------------------------------------------------------

    async def take_over(self, principal: Principal, conversation_id: str) -> InboxItem:
        """The conversation is the caller's to answer; 409 when another member holds it (race-safe: one
        conditional statement decides)."""
        user_id = _member(principal)
        row = await self._row(principal, conversation_id)
        if row.conversation.closed_at is not None:
            raise ConversationClosed()
        taken = await self.inbox.take_over(row.conversation.id, user_id, datetime.now(UTC))
        if taken is None:
            raise HeldByAnother()
        return inbox_item(InboxRow(taken, row.end_user))

    async def _held(self, principal: Principal, conversation_id: str) -> InboxRow:
        user_id = _member(principal)
        row = await self._row(principal, conversation_id)
        if row.conversation.closed_at is not None:
            raise ConversationClosed()
        if row.conversation.taken_over_by != user_id:
            raise NotHolding()
        return row

    async def reply(self, principal: Principal, conversation_id: str, content: str) -> InboxMessage:
        """A message from the member holding the conversation, delivered through its channel after commit."""
        row = await self._held(principal, conversation_id)
        message = await self.conversations.add(
            row.conversation, MessageRole.HUMAN, content, author_id=principal.user_id
        )
        self.uow.defer(HUMAN_REPLY_JOB, message_id=message.id)
        return inbox_message(message)

    async def release(self, principal: Principal, conversation_id: str) -> InboxItem:
        """Hand the conversation back: the agent answers again, the member's messages in its history."""
        row = await self._held(principal, conversation_id)
        released = await self.inbox.set_state(
            row.conversation.id, status=ConversationStatus.OPEN, taken_over_by=None, taken_over_at=None
        )
        return inbox_item(InboxRow(released, row.end_user))

    async def close(self, principal: Principal, conversation_id: str) -> InboxItem:
        """Close it: the end user's next message starts a new conversation. Closing ends a takeover too."""
        row = await self._row(principal, conversation_id)
        held_by = row.conversation.taken_over_by
        if held_by is not None and held_by != principal.user_id:
            raise HeldByAnother()
        closed = await self.inbox.set_state(
            row.conversation.id,
            closed_at=row.conversation.closed_at or datetime.now(UTC),
            status=ConversationStatus.OPEN,
            taken_over_by=None,
            taken_over_at=None,
        )
        return inbox_item(InboxRow(closed, row.end_user))

    async def reopen(self, principal: Principal, conversation_id: str) -> InboxItem:
        """Open a closed conversation again; 409 when its end user has started another since."""
        row = await self._row(principal, conversation_id)
        if row.conversation.closed_at is None:
            return inbox_item(row)
        try:
            async with self.uow.session.begin_nested():
                reopened = await self.inbox.set_state(row.conversation.id, closed_at=None)
        except IntegrityError:
            raise Conflict(
                "This end user has started a new conversation with the agent since; answer them there."
            ) from None
        return inbox_item(InboxRow(reopened, row.end_user))

    # --- asking for a person -----------------------------------------------------------------------------

    async def request_human(self, conversation_id: str, reason: str) -> bool:
        """Flag the conversation as needing a person and tell the org's owners; False when it is closed or a
        member holds it already (nobody is told twice for one request)."""
        now = datetime.now(UTC)
        current = await self.inbox.get_any(conversation_id)
        if current is None or current.status is ConversationStatus.NEEDS_HUMAN:
            return current is not None and current.closed_at is None
        flagged = await self.inbox.flag_needs_human(conversation_id, now)
        if flagged is None:
            return False
        self.uow.defer(NEEDS_HUMAN_JOB, conversation_id=conversation_id, reason=reason[:300])
        return True

    async def ask_for_human(
        self, agent: Agent, channel: str, end_user: str, profile: EndUserProfile | None, reason: str
    ) -> str:
        """An end user asks for a person (a ``/human`` command): their open conversation (opened if none) is
        flagged; what to tell them."""
        conversation = await self.conversations.open(agent, channel, end_user, profile=profile)
        if conversation.status is ConversationStatus.TAKEN_OVER:
            return ALREADY_WITH_HUMAN
        await self.request_human(conversation.id, reason)
        return HUMAN_ASKED

    # --- end users ---------------------------------------------------------------------------------------

    async def block(self, principal: Principal, end_user_id: str) -> EndUserOut:
        blocked = await self.end_users.set_blocked(
            principal.org_id, end_user_id, datetime.now(UTC), principal.user_id
        )
        if blocked is None:
            raise NotFound("End user")
        return EndUserOut.model_validate(blocked, from_attributes=True)

    async def unblock(self, principal: Principal, end_user_id: str) -> None:
        if await self.end_users.set_blocked(principal.org_id, end_user_id, None, None) is None:
            raise NotFound("End user")


def _member(principal: Principal) -> str:
    if principal.user_id is None:
        raise Forbidden("Only signed-in members take conversations over; API keys cannot.")
    return principal.user_id


def export_filename(conversation_id: str, extension: str) -> str:
    return f"conversation-{conversation_id}.{extension}"
