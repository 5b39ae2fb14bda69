"""What every messaging channel does with a person's text: check limits, store it, answer it.

The person hears a short, polite notice when the agent cannot answer (paused, over a quota or rate,
out of credits); the details, plans and upgrades, are for the agent's owner and stay out of the chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hutch.agents.models import Agent
from hutch.channels.models import ExternalEvent
from hutch.conversations.chat import ChatFlow
from hutch.core.errors import HutchError
from hutch.worker import JobContext

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

TEXT_ONLY = "I can only read text messages for now. Please type your question."
PLAN_LIMIT_NOTICE = "I cannot answer more messages at the moment: this assistant's plan limit is reached."


async def converse(
    ctx: JobContext,
    agent: Agent,
    channel: str,
    end_user: str,
    text: str,
    typing: Callable[[], Awaitable[None]] | None = None,
) -> str:
    """The reply to ``text``; the user's message is committed before the model runs."""
    flow = ChatFlow(ctx.uow, ctx.resources)
    try:
        turn = await flow.begin(agent, channel, end_user, text)
    except HutchError as refused:
        await ctx.uow.session.rollback()
        return notice(refused)
    await ctx.uow.session.commit()
    if typing is not None:
        await typing()
    answer = await flow.answer(turn)
    return answer.message.content


def notice(refused: HutchError) -> str:
    if refused.status_code == 429 and "per day" in refused.detail:
        return "I have answered all the messages I can for today. Please come back tomorrow."
    if refused.status_code == 429:
        return "I am receiving a lot of messages right now. Please try again in a little while."
    if refused.status_code == 402:
        return PLAN_LIMIT_NOTICE
    return "I cannot answer right now. Please try again later."


SENDING = "sending"
NOT_SENT_AGAIN = (
    "not sent again: the worker stopped while sending this answer, and the messenger cannot say whether it "
    "arrived (sending it again could send it twice)"
)


def interrupted_while_sending(event: ExternalEvent) -> bool:
    """A retry of a job that stopped mid-send (a crash, the database gone): the answer may have arrived."""
    return event.handled_at is None and event.outcome == SENDING


@asynccontextmanager
async def sending(session: AsyncSession, event: ExternalEvent) -> AsyncIterator[None]:
    """Around sending an answer: the event is marked as being sent first (committed). A send that fails with
    an error clears the mark, so the retry sends again; a worker that stops mid-send leaves it, and the retry
    records that instead of risking a second copy."""
    event.outcome = SENDING
    await session.commit()
    try:
        yield
    except Exception:
        event.outcome = None
        await session.commit()
        raise


def finish_event(event: ExternalEvent, outcome: str) -> str:
    """Mark an inbox event handled, with what was done (or why nothing could be)."""
    event.handled_at, event.outcome = datetime.now(UTC), outcome
    return outcome


async def store_event(
    db: AsyncSession | AsyncConnection, source: str, external_id: str, payload: dict[str, Any]
) -> bool:
    """Put an inbound event in the inbox; False when it is already there (a replay)."""
    stored = await db.execute(
        _STORE_EVENT, {"source": source, "external_id": external_id, "payload": payload}
    )
    return stored.first() is not None
