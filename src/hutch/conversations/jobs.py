"""Jobs of the conversations domain."""

from __future__ import annotations

from hutch.agents.models import Agent
from hutch.agents.service import org_credentials
from hutch.billing.jobs import email_owners
from hutch.conversations.inbox import NEEDS_HUMAN_JOB
from hutch.conversations.models import Conversation, Memory, MemoryKind
from hutch.conversations.repository import MemoryRepository, MessageRepository
from hutch.conversations.service import COMPACT_JOB
from hutch.core.ids import new_id
from hutch.db.jobs import JobContext, job
from hutch.engine.compaction import summarize
from hutch.i18n import _
from hutch.notifications.models import NoticeKind


@job(COMPACT_JOB, lock_per="conversation_id")
async def compact_conversation(ctx: JobContext, conversation_id: str) -> int:
    """Fold messages older than the prompt's history into the conversation's summary; safe to repeat.

    The summarising model call holds no connection: what it needs is read and the read ended first (one
    compaction per conversation at a time, by the job's lock)."""
    session = ctx.uow.session
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return 0
    agent = await session.get(Agent, conversation.agent_id)
    if agent is None:
        return 0
    memories = MemoryRepository(session)
    summary = await memories.summary_of(conversation_id)
    covered = (summary.covers_until_seq or 0) if summary else 0
    cutoff = conversation.message_count - ctx.settings.history_messages
    if cutoff <= covered:
        return 0
    older = await MessageRepository(session).between(conversation_id, covered, cutoff)
    keys = await org_credentials(session, ctx.resources.secret_box, agent.org_id)
    model = ctx.resources.llm.resolve(agent.model, keys)
    await ctx.uow.checkpoint()
    text = await summarize(ctx.resources.llm, model, summary.content if summary else None, older)
    summary = await memories.summary_of(conversation_id, for_update=True)
    if summary is None:
        summary = Memory(
            id=new_id("mem"),
            org_id=conversation.org_id,
            agent_id=agent.id,
            end_user=conversation.end_user,
            kind=MemoryKind.SUMMARY,
            conversation_id=conversation_id,
            content=text,
        )
        session.add(summary)
    summary.content = text
    summary.covers_until_seq = cutoff
    return len(older)


@job(NEEDS_HUMAN_JOB, queue="email")
async def needs_human_notice(ctx: JobContext, conversation_id: str, reason: str) -> int:
    """Tell the org's members that an end user waits for a person: by email and in their linked chats, the
    ways each chose for this kind of notice (``needs_human``). How many were emailed."""
    session = ctx.uow.session
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return 0
    agent = await session.get(Agent, conversation.agent_id)
    name = agent.name if agent is not None else "your agent"
    link = f"{ctx.settings.base_url}/app/inbox/{conversation.id}"

    def say() -> str:
        return _("Someone talking to {agent} on {channel} wants a person ({reason}). Open: {link}").format(
            agent=name, channel=conversation.channel, reason=reason, link=link
        )

    def compose(org_name: str) -> tuple[str, str]:
        said = say()
        return (
            _("{agent}: someone wants to talk to a person").format(agent=name),
            _("Hello,")
            + f"\n\n{said}\n\n"
            + _("Take the conversation over in the inbox to answer them.")
            + "\n",
        )

    return await email_owners(ctx, conversation.org_id, NoticeKind.NEEDS_HUMAN.value, compose, chat=say)
