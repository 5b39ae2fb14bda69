"""The browser of one turn: what ``EngineDeps.browser`` is when an agent may use the browser.

It opens (or finds again) the browser session of what the turn works for — its conversation, or its task,
whose steps share one — runs the action, keeps a screenshot of the screen after it (the image in the
screenshot store, its row in a short unit of work of its own: no connection is held while the browser
works; on a dedicated runtime, in the answer the platform reads) and answers the model in words. Files
downloaded are kept here until the turn stores its answer, which carries them as attachments
(``hutch.turns.flow``).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, get_args

import structlog
from playwright.async_api import Error as PlaywrightError

from hutch.browser.leases import BrowserLeases
from hutch.browser.models import Screenshot
from hutch.browser.pool import (
    PLAN_BROWSERS_BUSY,
    BrowserActionFailed,
    BrowserBusy,
    BrowserPool,
    BrowserSession,
    DownloadedFile,
    Observation,
)
from hutch.browser.repository import ScreenshotRepository
from hutch.browser.screenshots import ScreenshotStore, ScreenshotStoreFailed, screenshot_key
from hutch.core.ids import new_id
from hutch.db.engine import Database, JobSink, unit_of_work
from hutch.engine.computer_use import ComputerAction
from hutch.engine.deps import BrowserResult
from hutch.knowledge.parsing import UnreadableDocument, kind_of, parse

log = structlog.get_logger(__name__)

MAX_DOWNLOAD_TEXT = 8000  # characters of a downloaded file's text given to the model
# What the tools may ask (``hutch.engine.browser_tools``), by action name.
ACTIONS = frozenset({"open", "read", "click", "type", "select", "scroll", "back", "screenshot", "download"})
# What a computer-use model's ``computer`` tool may ask besides a screenshot (``hutch.engine.computer_use``):
# actions at screen coordinates and on the keyboard, named as the model names them.
POINTER_ACTIONS = frozenset(get_args(ComputerAction)) - {"screenshot"}


@dataclass(frozen=True)
class BrowserScope:
    """What a browser works for: a conversation, or a task (whose steps share it), of one agent."""

    org_id: str
    agent_id: str
    conversation_id: str | None = None
    task_id: str | None = None
    step: int | None = None  # the task's step (from 1)
    reference: str = ""  # a turn kept nowhere (an API call without a conversation): its own browser

    @property
    def key(self) -> str:
        """The browser session's key: ids are unique across orgs (the pool checks the org as well)."""
        if self.task_id is not None:
            return task_browser_key(self.task_id)
        if self.conversation_id is not None:
            return f"conversation:{self.conversation_id}"
        return f"turn:{self.reference}"


def task_browser_key(task_id: str) -> str:
    return f"task:{task_id}"


@dataclass(frozen=True)
class BrowserFile:
    """A file the agent downloaded, to keep with its answer."""

    filename: str
    content_type: str
    data: bytes
    text: str | None


class ScreenshotKeeper(Protocol):
    """Where a browser's screenshots go: the platform's store and rows (:class:`StoredScreenshots`), or on a
    dedicated runtime the answer the platform reads (``hutch.runtimes.browser``)."""

    async def keep(
        self, scope: BrowserScope, image: bytes, action: str, tool_call_id: str | None, page_url: str
    ) -> str | None:
        """Keep one screen (a JPEG); its id, None when it could not be kept (the action still counts)."""
        ...


@dataclass(frozen=True)
class StoredScreenshots:
    """The image in the screenshot store, its row in a short unit of work of its own."""

    store: ScreenshotStore
    database: Database
    jobs: JobSink | None

    async def keep(
        self, scope: BrowserScope, image: bytes, action: str, tool_call_id: str | None, page_url: str
    ) -> str | None:
        shot_id = new_id("shot")
        key = screenshot_key(scope.org_id, shot_id)
        try:
            await self.store.put(key, image, "image/jpeg")
        except (ScreenshotStoreFailed, OSError) as exc:
            log.warning("a browser screenshot could not be stored", error=str(exc))
            return None
        async with unit_of_work(self.database, self.jobs) as uow:
            ScreenshotRepository(uow.session).add(
                Screenshot(
                    id=shot_id,
                    org_id=scope.org_id,
                    agent_id=scope.agent_id,
                    conversation_id=scope.conversation_id,
                    task_id=scope.task_id,
                    step=scope.step,
                    tool_call_id=(tool_call_id or "")[:100] or None,
                    action=action[:40],
                    page_url=page_url[:4000],
                    storage_key=key,
                    content_type="image/jpeg",
                    size_bytes=len(image),
                    created_at=datetime.now(UTC),
                )
            )
        return shot_id


@dataclass
class AgentBrowser:
    pool: BrowserPool
    keeper: ScreenshotKeeper  # where its screenshots go
    scope: BrowserScope
    at_once: int | None  # browsers the org may have open at once (its plan); None: no limit
    max_download_bytes: int
    downloads: list[BrowserFile] = field(default_factory=list)
    # Counts its session among the org's open browsers across processes (None: only this pool's count, as
    # on a dedicated runtime).
    leases: BrowserLeases | None = None

    async def act(self, action: str, tool_call_id: str | None, **arguments: Any) -> BrowserResult:
        pointer = action.startswith("computer:")
        if action not in ACTIONS and (not pointer or action.removeprefix("computer:") not in POINTER_ACTIONS):
            return BrowserResult(f"There is no browser action {action!r}.")
        if not await self._leased():
            return BrowserResult(PLAN_BROWSERS_BUSY.format(at_once=self.at_once))
        try:
            session = await self.pool.session(self.scope.key, self.scope.org_id, self.at_once)
        except BrowserBusy as exc:
            return BrowserResult(str(exc))
        except PlaywrightError as exc:
            log.warning("the browser did not start", error=str(exc))
            return BrowserResult("The browser could not be started here; answer without it.")
        note = ""
        observation: Observation | None
        try:
            observation = await session.run(lambda: self._perform(session, action, arguments))
        except BrowserActionFailed as exc:
            note = str(exc)
            observation = await self._look(session, note)
        except PlaywrightError as exc:  # the page or the browser crashed: the next action starts afresh
            log.warning("a browser action failed", action=action, error=str(exc))
            await self.close()
            return BrowserResult("The browser stopped working on this page; open the page again.")
        if observation is None:
            return BrowserResult(note)
        shot_id = await self._keep(observation, action, tool_call_id)
        text = observation.for_model()
        if action == "download" and self.downloads and not note:
            text = f"{self._download_words(self.downloads[-1])}\n\n{text}"
        return BrowserResult(text, shot_id, observation.screenshot, observation.in_brief())

    async def _leased(self) -> bool:
        """Whether the session counts among the org's open browsers (renewed by each action)."""
        if self.leases is None or self.at_once is None:
            return True
        return await self.leases.take(self.scope.key, self.scope.org_id, self.at_once)

    async def close(self) -> None:
        """Close the session (the turn or the task it worked for is over): it no longer counts."""
        await self.pool.close_session(self.scope.key)
        if self.leases is not None:
            await self.leases.release(self.scope.key)

    async def _perform(self, session: BrowserSession, action: str, arguments: dict[str, Any]) -> Observation:
        perform: dict[str, Callable[[], Awaitable[Observation]]] = {
            "open": lambda: session.navigate(str(arguments["url"])),
            "read": lambda: session.observe(),
            "screenshot": lambda: session.observe("Screenshot taken."),
            "click": lambda: session.click(int(arguments["element"])),
            "type": lambda: session.type_text(
                int(arguments["element"]), str(arguments["text"]), bool(arguments.get("submit"))
            ),
            "select": lambda: session.select(int(arguments["element"]), str(arguments["option"])),
            "scroll": lambda: session.scroll(str(arguments.get("direction", "down"))),
            "back": lambda: session.back(),
        }
        if action.startswith("computer:"):
            return await _point(session, action.removeprefix("computer:"), arguments)
        if action == "download":
            observation, file = await session.download(int(arguments["element"]), self.max_download_bytes)
            self.downloads.append(self._kept(file))
            return observation
        return await perform[action]()

    async def _look(self, session: BrowserSession, note: str) -> Observation | None:
        """The screen after an action that did not work, with why; None when even that fails."""
        try:
            return await session.run(lambda: session.observe(note))
        except PlaywrightError:
            return None

    @staticmethod
    def _kept(file: DownloadedFile) -> BrowserFile:
        content_type = mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
        text: str | None = None
        kind = kind_of(file.filename, content_type)
        if kind is not None:
            try:
                sections = parse(file.data, kind)
                text = "\n\n".join(s.text for s in sections).strip() or None
            except UnreadableDocument:
                text = None
        return BrowserFile(file.filename, content_type, file.data, text)

    @staticmethod
    def _download_words(file: BrowserFile) -> str:
        words = f"Downloaded {file.filename} ({len(file.data)} bytes); it is kept in the conversation."
        if file.text:
            shown = file.text[:MAX_DOWNLOAD_TEXT]
            cut = "\n[... the rest is cut]" if len(file.text) > MAX_DOWNLOAD_TEXT else ""
            words += f"\nIts text:\n{shown}{cut}"
        return words

    async def _keep(self, observation: Observation, action: str, tool_call_id: str | None) -> str | None:
        """Keep the screen after the action; None when it could not be kept (the action still counts)."""
        return await self.keeper.keep(
            self.scope,
            observation.screenshot,
            action.removeprefix("computer:"),
            tool_call_id,
            observation.reading.url,
        )


async def _point(session: BrowserSession, action: str, arguments: dict[str, Any]) -> Observation:
    """A computer-use model's action (``computer:<action>``), at screen coordinates or on the keyboard."""

    def point(name: str) -> tuple[int, int]:
        value = arguments.get(name)
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise BrowserActionFailed(f"{action} needs `{name}` as [x, y].")
        return int(value[0]), int(value[1])

    text = str(arguments.get("text") or "")
    clicks = {"left_click": 1, "double_click": 2, "triple_click": 3, "right_click": 1, "middle_click": 1}
    if action in clicks:
        button = {"right_click": "right", "middle_click": "middle"}.get(action, "left")
        x, y = point("coordinate") if arguments.get("coordinate") is not None else session.cursor
        return await session.pointer_click(x, y, button=button, clicks=clicks[action], modifiers=text)
    if action == "mouse_move":
        return await session.pointer_move(*point("coordinate"))
    if action == "left_click_drag":
        return await session.pointer_drag(point("start_coordinate"), point("coordinate"))
    if action in ("left_mouse_down", "left_mouse_up"):
        return await session.pointer_button(down=action == "left_mouse_down")
    if action == "scroll":
        direction = str(arguments.get("scroll_direction") or "down")
        if direction not in ("up", "down", "left", "right"):
            raise BrowserActionFailed("scroll_direction is up, down, left or right.")
        at = point("coordinate") if arguments.get("coordinate") is not None else (None, None)
        return await session.pointer_scroll(at[0], at[1], direction, int(arguments.get("scroll_amount") or 3))
    if action == "type":
        if not text:
            raise BrowserActionFailed("type needs the `text` to type.")
        return await session.keyboard_type(text)
    if action in ("key", "hold_key"):
        hold = float(arguments.get("duration") or 0) if action == "hold_key" else 0.0
        return await session.keyboard_press(text, hold)
    if action == "cursor_position":
        x, y = session.cursor
        return await session.observe(f"The mouse is at ({x}, {y}).")
    return await session.wait(float(arguments.get("duration") or 1))
