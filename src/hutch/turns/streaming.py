"""A turn's answer as server-sent events: ``delta`` events as the text arrives, then one ``done``.

Phase 1 ran in the request (the user's message is committed before the response starts); the stream, which
outlives the request, runs phases 2 and 3 on a unit of work of its own, continuing the request's flow (the
org, its plan and keys stay known), so nothing is read before the model runs or held while it answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hutch.db.engine import unit_of_work
from hutch.engine.runner import TextDelta
from hutch.turns.flow import Answer, AnswerCarries, Turn, TurnFlow

# What the ``done`` event carries, built once the answer is stored.
DoneBody = Callable[[Answer], Awaitable[dict[str, Any]]]


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def stream_turn(
    flow: TurnFlow, turn: Turn, done: DoneBody, carrying: AnswerCarries | None = None
) -> AsyncIterator[str]:
    """The answer to ``turn``, which ``flow`` began in the request."""

    async def events() -> AsyncIterator[str]:
        async with unit_of_work(flow.resources.database, flow.resources.jobs) as uow:
            async for event in flow.continued_on(uow).stream(turn, carrying=carrying):
                if isinstance(event, TextDelta):
                    yield sse("delta", {"content": event.text})
                else:
                    yield sse("done", await done(event))

    return events()
