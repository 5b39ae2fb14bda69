"""The screens of the browser on a dedicated runtime, sent to the platform.

A runtime drives an :class:`~hutch.browser.agent_browser.AgentBrowser` on a pool of its own (sessions kept
per conversation or task, the egress guard, refusals in words for the model, downloads: all as shared
agents have them), but has no database and no screenshot store: each screenshot goes, as it is taken, into
the answer the platform is reading (:class:`ScreenSink`, the events of :mod:`hutch.runtimes.wire`), and the
platform stores it as it stores a shared agent's.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hutch.browser.agent_browser import BrowserFile, BrowserScope
from hutch.core.ids import new_id
from hutch.runtimes.wire import (
    DOWNLOAD_EVENT,
    MAX_SCREENSHOT_BYTES,
    MAX_SCREENSHOTS_PER_TURN,
    SCREENSHOT_EVENT,
)


def sse_event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


def download_event(file: BrowserFile) -> str:
    """A file the browser downloaded, for the platform to keep with the answer."""
    data = {
        "filename": file.filename,
        "content_type": file.content_type,
        "data": base64.b64encode(file.data).decode(),
    }
    return sse_event(DOWNLOAD_EVENT, data)


class ScreenSink:
    """One answer's events for the platform, in the order they happen (read by the answer's stream)."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent = 0

    async def keep(
        self, scope: BrowserScope, image: bytes, action: str, tool_call_id: str | None, page_url: str
    ) -> str | None:
        """Send one screen; its id names it on the tool call's record until the platform stores it (under
        its own turn's org, whatever ``scope`` says here)."""
        if self.sent >= MAX_SCREENSHOTS_PER_TURN or len(image) > MAX_SCREENSHOT_BYTES:
            return None
        self.sent += 1
        shot_id = new_id("shot")
        data = {
            "id": shot_id,
            "tool_call_id": tool_call_id,
            "action": action,
            "page_url": page_url[:4000],
            "image": base64.b64encode(image).decode(),
        }
        self.events.put_nowait(sse_event(SCREENSHOT_EVENT, data))
        return shot_id
