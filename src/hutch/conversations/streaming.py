"""A turn's answer as server-sent events: ``delta`` events as the text arrives, then one ``done``.

The turn was stored by the request's own transaction; the stream answers it in a transaction of its own, so
the user's message is safe whatever happens to the connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hutch.conversations.chat import Answer, ChatFlow, Turn
from hutch.db.engine import UnitOfWork
from hutch.engine.runner import TextDelta

# What the ``done`` event carries, built in the stream's transaction (which commits right after).
DoneBody = Callable[[Answer, UnitOfWork], Awaitable[dict[str, Any]]]


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def stream_turn(
    flow: ChatFlow,
    jobs_defer: Callable[[str, dict[str, Any]], Awaitable[int]],
    turn: Turn,
    done: DoneBody,
) -> AsyncIterator[str]:
    """The answer to ``turn``, which ``flow`` began in the request's transaction."""

    async def events() -> AsyncIterator[str]:
        async with flow.resources.database.sessionmaker() as session:
            uow = UnitOfWork(session)
            async for event in flow.continued_on(uow).stream(turn):
                if isinstance(event, TextDelta):
                    yield sse("delta", {"content": event.text})
                else:
                    body = await done(event, uow)
                    await uow.commit(jobs_defer)
                    yield sse("done", body)

    return events()
