"""Jobs of the conversations domain."""

from __future__ import annotations

from hutch.agents.models import Agent
from hutch.agents.service import org_credentials
from hutch.conversations.inbox import NEEDS_HUMAN_JOB
from hutch.conversations.models import Conversation, Memory, MemoryKind
from hutch.conversations.repository import MemoryRepository, MessageRepository
from hutch.conversations.service import COMPACT_JOB
from hutch.core.ids import new_id
from hutch.db.jobs import JobContext, job
from hutch.engine.compaction import summarize
from hutch.notifications.customers import NOTIFY_CHATS_JOB, owners, record
from hutch.notifications.service import queue_email

NEEDS_HUMAN_KIND = "needs_human"


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
    """Tell the org's owners that an end user waits for a person: by email and in their linked chats, as
    each chose. How many were emailed."""
    session = ctx.uow.session
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return 0
    agent = await session.get(Agent, conversation.agent_id)
    name = agent.name if agent is not None else "your agent"
    link = f"{ctx.settings.base_url}/app/inbox/{conversation.id}"
    text = f"Someone talking to {name} on {conversation.channel} wants a person ({reason}). Open: {link}"
    emailed = 0
    for owner in await owners(ctx.uow, conversation.org_id):
        if owner.wants_email:
            queue_email(
                ctx.uow,
                ctx.resources.secret_box,
                to=owner.email,
                subject=f"{name}: someone wants to talk to a person",
                body=f"Hello,\n\n{text}\n\nTake the conversation over in the inbox to answer them.\n",
                kind=NEEDS_HUMAN_KIND,
            )
            record(ctx.uow, conversation.org_id, owner.user_id, NEEDS_HUMAN_KIND, "email", text)
            emailed += 1
    ctx.uow.defer(NOTIFY_CHATS_JOB, org_id=conversation.org_id, text=text, kind=NEEDS_HUMAN_KIND)
    return emailed
