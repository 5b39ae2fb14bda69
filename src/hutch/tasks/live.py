"""A task's live view: its browser's latest screen as server-sent events, while the task runs.

Each stream reads the task's newest screenshot (one indexed statement on a pooled connection, returned at
once) every ``POLL_SECONDS``, so a new screen reaches the viewer within about half a second and an open
stream holds no connection between reads. The stream starts with the latest screen there is, and ends with
an ``end`` event once the task is finished.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from hutch.browser.service import screenshot_url
from hutch.db.engine import Database, unit_of_work
from hutch.tasks.models import FINISHED
from hutch.tasks.repository import TaskRepository

POLL_SECONDS = 0.4
KEEPALIVE_SECONDS = 15.0


def _event(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n"


async def live_screens(
    database: Database,
    org_id: str,
    task_id: str,
    *,
    interval: float = POLL_SECONDS,
    url_of: Callable[[str], str] = screenshot_url,
) -> AsyncGenerator[str, None]:
    """The events of one viewer of the task's screen (see the module's docstring); ``url_of`` makes a
    screenshot's address (the API's, or the dashboard's)."""
    shown: str | None = None
    quiet = 0.0
    yield ": the latest screen of the task follows\n\n"
    while True:
        async with unit_of_work(database, None) as uow:
            latest, status = await TaskRepository(uow.session).latest_screen(org_id, task_id)
        if latest is not None and latest.id != shown:
            shown, quiet = latest.id, 0.0
            yield _event(
                "screen",
                {
                    "url": url_of(latest.id),
                    "step": latest.step,
                    "action": latest.action,
                    "page_url": latest.page_url,
                    "at": latest.created_at.isoformat(),
                },
                latest.id,
            )
        if status is None or status in FINISHED:
            yield _event("end", {"status": status.value if status else "deleted"})
            return
        await asyncio.sleep(interval)
        quiet += interval
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": still running\n\n"
