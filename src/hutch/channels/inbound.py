"""The inbox every messaging channel shares: events stored once before they are acknowledged, marked while
their answer is sent, and marked handled with what was done. Answering is a turn (``hutch.turns.inbox``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from hutch.channels.models import SENDING, ExternalEvent
from hutch.channels.repository import STORE_EVENT, event_marked, event_row, insert_event
from hutch.db.carried import NOTHING, Carried
from hutch.db.engine import JobsNotQueued, UnitOfWork
from hutch.i18n import N_

# For what a person sends that is neither text nor a file Hutch reads (a sticker, a location, an edit).
UNREADABLE_MESSAGE = N_(
    "I cannot read that kind of message. Please type your question, or send a photo, a voice note or a file."
)


NOT_SENT_AGAIN = (
    "not sent again: the worker stopped while sending this answer, and the messenger cannot say whether it "
    "arrived (sending it again could send it twice)"
)


def interrupted_while_sending(event: ExternalEvent) -> bool:
    """A retry of a job that stopped mid-send (a crash, the database gone): the answer may have arrived."""
    return event.handled_at is None and event.outcome == SENDING


@asynccontextmanager
async def sending(uow: UnitOfWork, event: ExternalEvent) -> AsyncIterator[None]:
    """Around sending an answer: the event is marked as being sent first (committed), unless the statement
    that stored a turn's answer marked it already. A send that fails with an error clears the mark, so the
    retry sends again; a worker that stops mid-send leaves it, and the retry records that instead of risking
    a second copy."""
    await uow.checkpoint()  # what came before, with its jobs: the mark then commits alone, before the send
    if event.outcome != SENDING:
        await mark_event(uow, event, SENDING)
    try:
        yield
    except Exception:
        await mark_event(uow, event, None)
        await uow.checkpoint()  # committed before the job's failure rolls back what it did
        raise


async def mark_event(
    uow: UnitOfWork,
    event: ExternalEvent,
    outcome: str | None,
    *,
    handled: bool = False,
    carrying: Carried = NOTHING,
) -> None:
    """Mark ``event`` (handled, with ``handled``) in one statement with what ``carrying`` adds (the chat's
    message counts): committed by itself, or with the transaction the unit of work has open."""
    handled_at = datetime.now(UTC) if handled else None
    async with uow.alone():
        await (event_marked(event, outcome, handled_at) + carrying).execute(uow.session)
    set_committed_value(event, "outcome", outcome)  # written by the statement: nothing for the ORM to flush
    set_committed_value(event, "handled_at", handled_at)


def finish_event(event: ExternalEvent, outcome: str) -> str:
    """Mark an inbox event handled, with what was done (or why nothing could be)."""
    event.handled_at, event.outcome = datetime.now(UTC), outcome
    return outcome


async def store_event(
    db: AsyncSession | AsyncConnection, source: str, external_id: str, payload: dict[str, Any]
) -> bool:
    """Put an inbound event in the inbox; False when it is already there (a replay)."""
    return await insert_event(db, source, external_id, payload)


async def store_event_with_job(
    uow: UnitOfWork,
    source: str,
    external_id: str,
    payload: dict[str, Any],
    task_name: str,
    *,
    lock: str | None = None,
    **kwargs: Any,
) -> bool:
    """Put an inbound event in the inbox with the job that answers it, in one statement committed on its own
    (a webhook is acknowledged after one round trip); False for a replay, which queues nothing."""
    if uow.jobs is None:
        raise JobsNotQueued(f"no job sink to queue {task_name}")
    async with uow.alone():
        row = event_row(source, external_id, payload)
        return await uow.jobs.defer_after(uow.session, STORE_EVENT, row, task_name, lock=lock, **kwargs)
