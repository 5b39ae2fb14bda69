"""The statements a turn runs of its own: what it carries, run alone when no statement of the turn carries it,
and the inbox event's reply, kept by the statement that stores the answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.channels.models import SENDING, ExternalEvent
from hutch.db.carried import Carried

# The answer kept on its event, which is marked as being sent: what follows the commit is the sending.
_REPLY_KEPT = (
    text(
        "UPDATE external_events SET reply = :event_reply, outcome = :event_sending "
        "WHERE source = :event_source AND external_id = :event_external_id RETURNING external_id"
    )
    .columns()
    .cte("reply_kept")
)


# The stored message a turn answers, kept on its event by phase 1's last statement.
_EVENT_TURN = (
    text(
        "UPDATE external_events SET turn_message_id = :event_turn_message "
        "WHERE source = :turn_event_source AND external_id = :turn_event_external_id RETURNING external_id"
    )
    .columns()
    .cte("event_turn")
)


def event_turn(event: ExternalEvent, message_id: str) -> Carried:
    """The stored message kept on its event, so a retried job resumes the turn instead of storing it again."""
    return Carried(
        (_EVENT_TURN,),
        params={
            "event_turn_message": message_id,
            "turn_event_source": event.source,
            "turn_event_external_id": event.external_id,
        },
    )


def reply_kept(event: ExternalEvent, reply: str) -> Carried:
    """The answer kept on its event by the statement that stores it, the event marked as being sent
    (``hutch.channels.inbound.sending``): a retried job then only delivers, or says why it did not."""
    return Carried(
        (_REPLY_KEPT,),
        params={
            "event_reply": reply,
            "event_sending": SENDING,
            "event_source": event.source,
            "event_external_id": event.external_id,
        },
    )


class TurnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def run_alone(self, carried: Carried) -> dict[str, Any]:
        """Run what a turn carries as a statement of its own; the carried columns' values."""
        return await carried.execute(self.session)
