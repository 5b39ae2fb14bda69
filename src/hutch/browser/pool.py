"""The browsers agents drive: one Chromium process per Hutch process, one context per conversation or task.

:class:`BrowserPool` starts Debian's Chromium through Playwright the first time an agent needs a browser
(never a downloaded browser: ``HUTCH_BROWSER_EXECUTABLE``) and hands out :class:`BrowserSession`\\ s, each
an isolated browser context (its own cookies, storage and cache; never a shared profile) behind its own
egress proxy (:mod:`hutch.browser.egress_proxy`). A session is keyed by what it works for (a conversation,
or a task, whose steps share it), is kept while it is used, and closed after ``HUTCH_BROWSER_IDLE_SECONDS``
of inactivity. The pool holds at most ``HUTCH_BROWSER_POOL_SIZE`` sessions: a new one closes the one idle
the longest, and when none is idle the agent is told the browsers are busy. An org holds at most as many
as its plan allows (``browsers``), counted in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog
from playwright.async_api import (
    Browser,
    BrowserContext,
    Download,
    Locator,
    Page,
    Playwright,
    Request,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from hutch.browser.egress_proxy import BYPASS_NOTHING, EgressProxy
from hutch.browser.page_text import READ_PAGE_SCRIPT, PageReading, selector_of
from hutch.core.egress import EgressPolicy, Resolver, system_resolver
from hutch.engine.deps import BROWSER_SCREEN
from hutch.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")
VIEWPORT = {"width": BROWSER_SCREEN[0], "height": BROWSER_SCREEN[1]}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Chromium's own calls home (autofill, translation, updates) would go through the agents' proxies.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter",
]
SETTLE_MS = 3000  # after an action, how long to wait for a page it started loading
SCREENSHOT_QUALITY = 70
# Actions at screen coordinates (computer-use models): how long a click or a key press may take to start
# loading a page before the screen is taken, and how far one step of the wheel scrolls.
POINTER_SETTLE_MS = 150
SCROLL_STEP_PX = 100
MAX_WAIT_SECONDS = 5.0
# Keys as computer-use models name them (X11 keysyms, as xdotool takes them) -> Playwright's names.
KEY_NAMES = {
    "return": "Enter",
    "enter": "Enter",
    "kp_enter": "Enter",
    "tab": "Tab",
    "escape": "Escape",
    "esc": "Escape",
    "backspace": "Backspace",
    "delete": "Delete",
    "del": "Delete",
    "insert": "Insert",
    "home": "Home",
    "end": "End",
    "up": "ArrowUp",
    "down": "ArrowDown",
    "left": "ArrowLeft",
    "right": "ArrowRight",
    "arrowup": "ArrowUp",
    "arrowdown": "ArrowDown",
    "arrowleft": "ArrowLeft",
    "arrowright": "ArrowRight",
    "page_up": "PageUp",
    "prior": "PageUp",
    "pageup": "PageUp",
    "page_down": "PageDown",
    "next": "PageDown",
    "pagedown": "PageDown",
    "space": "Space",
    "minus": "-",
    "plus": "+",
    "equal": "=",
    "period": ".",
    "comma": ",",
    "slash": "/",
    "ctrl": "Control",
    "control": "Control",
    "alt": "Alt",
    "shift": "Shift",
    "super": "Meta",
    "cmd": "Meta",
    "meta": "Meta",
    "win": "Meta",
}


class BrowserBusy(Exception):
    """No browser can be opened now; the message is one sentence for the agent."""


class BrowserActionFailed(Exception):
    """An action could not be done (no such element, a page that did not load); one sentence."""


@dataclass(frozen=True)
class Observation:
    """What an action left on screen: the page as text (numbered elements) and its screenshot."""

    reading: PageReading
    screenshot: bytes  # JPEG
    note: str = ""  # what the action itself reports ("Typed into [2].")

    def for_model(self) -> str:
        text = self.reading.for_model()
        return f"{self.note}\n\n{text}" if self.note else text

    def in_brief(self) -> str:
        """What the action did and which page is open, without the page's text."""
        where = f"Page: {self.reading.title or '(no title)'}\nAddress: {self.reading.url}"
        return f"{self.note}\n{where}" if self.note else where


@dataclass(frozen=True)
class DownloadedFile:
    filename: str
    data: bytes


@dataclass(eq=False)
class BrowserSession:
    """One isolated browser context and its page; actions run one at a time."""

    key: str
    org_id: str
    context: BrowserContext
    page: Page
    proxy: EgressProxy
    timeout_ms: int
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    cursor: tuple[int, int] = (0, 0)  # where the mouse was last moved (Playwright does not tell)
    _loads: _PageLoads | None = None  # watches the page for loads that pointer actions start

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    async def run(self, action: Callable[[], Awaitable[T]]) -> T:
        async with self.lock:
            self.last_used = time.monotonic()
            try:
                return await action()
            finally:
                self.last_used = time.monotonic()

    # --- actions (each called through ``run``) -------------------------------------------------------

    async def observe(self, note: str = "") -> Observation:
        with contextlib.suppress(PlaywrightError):
            await self.page.wait_for_load_state("load", timeout=SETTLE_MS)
        reading = PageReading.of(await self.page.evaluate(READ_PAGE_SCRIPT))
        shot = await self.page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY)
        return Observation(reading, shot, note)

    async def navigate(self, url: str) -> Observation:
        mark = len(self.proxy.refusals)
        try:
            await self.page.goto(url, wait_until="load", timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise BrowserActionFailed(self._why(url, exc, mark)) from None
        refused = self.proxy.refusals_since(mark)
        if refused and self.page.url in ("about:blank", "chrome-error://chromewebdata/"):
            raise BrowserActionFailed(f"{url} did not load: refused ({refused[-1]})")
        return await self.observe(self._refusal_note(mark))

    async def click(self, ref: int) -> Observation:
        mark = len(self.proxy.refusals)
        element = await self._element(ref)
        try:
            await element.click(timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Clicking [{ref}] did not work: {_first_line(exc)}") from None
        return await self.observe(f"Clicked [{ref}]. {self._refusal_note(mark)}".strip())

    async def type_text(self, ref: int, text: str, submit: bool) -> Observation:
        mark = len(self.proxy.refusals)
        element = await self._element(ref)
        try:
            await element.fill(text, timeout=self.timeout_ms)
            if submit:
                await element.press("Enter", timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Typing into [{ref}] did not work: {_first_line(exc)}") from None
        note = f"Typed into [{ref}]" + (" and pressed Enter." if submit else ".")
        return await self.observe(f"{note} {self._refusal_note(mark)}".strip())

    async def select(self, ref: int, option: str) -> Observation:
        element = await self._element(ref)
        try:
            chosen = await element.select_option(label=option, timeout=self.timeout_ms)
        except PlaywrightError:
            try:
                chosen = await element.select_option(value=option, timeout=self.timeout_ms)
            except PlaywrightError as exc:
                raise BrowserActionFailed(
                    f"Choosing {option!r} in [{ref}] did not work: {_first_line(exc)}"
                ) from None
        return await self.observe(f"Chose {', '.join(chosen) or option!r} in [{ref}].")

    async def scroll(self, direction: str) -> Observation:
        sign = -1 if direction == "up" else 1
        await self.page.mouse.wheel(0, sign * VIEWPORT["height"] * 0.8)
        await self.page.wait_for_timeout(150)
        return await self.observe(f"Scrolled {direction}.")

    async def back(self) -> Observation:
        try:
            answer = await self.page.go_back(wait_until="load", timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Going back did not work: {_first_line(exc)}") from None
        return await self.observe("Went back." if answer is not None else "There is no earlier page.")

    async def download(self, ref: int, max_bytes: int) -> tuple[Observation, DownloadedFile]:
        element = await self._element(ref)
        try:
            async with self.page.expect_download(timeout=self.timeout_ms) as waiting:
                await element.click(timeout=self.timeout_ms)
            download: Download = await waiting.value
            path = await download.path()
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"[{ref}] did not download a file: {_first_line(exc)}") from None
        data = await asyncio.to_thread(_read_capped, Path(path), max_bytes)
        with contextlib.suppress(PlaywrightError):
            await download.delete()
        observation = await self.observe(f"Downloaded {download.suggested_filename} ({len(data)} bytes).")
        return observation, DownloadedFile(download.suggested_filename or "download", data)

    # --- actions at screen coordinates, for computer-use models -------------------------------------

    async def pointer_click(
        self, x: int, y: int, *, button: str = "left", clicks: int = 1, modifiers: str = ""
    ) -> Observation:
        """Click (``clicks`` times) at a point of the screen, holding ``modifiers`` ("shift", "ctrl+alt")."""
        self._on_screen(x, y)
        held = [_key_name(k) for k in modifiers.split("+") if k.strip()] if modifiers else []
        marks = self._marks()
        try:
            for key in held:
                await self.page.keyboard.down(key)
            await self.page.mouse.click(x, y, button=button, click_count=clicks)  # type: ignore[arg-type]
            for key in reversed(held):
                await self.page.keyboard.up(key)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Clicking at ({x}, {y}) did not work: {_first_line(exc)}") from None
        self.cursor = (x, y)
        what = {1: "Clicked", 2: "Double-clicked", 3: "Triple-clicked"}.get(clicks, "Clicked")
        side = "" if button == "left" else f" with the {button} button"
        return await self._settled(marks, f"{what}{side} at ({x}, {y}).")

    async def pointer_move(self, x: int, y: int) -> Observation:
        self._on_screen(x, y)
        marks = self._marks()
        await self.page.mouse.move(x, y)
        self.cursor = (x, y)
        return await self._settled(marks, f"Moved the mouse to ({x}, {y}).")

    async def pointer_button(self, down: bool) -> Observation:
        """Press (or release) the left button where the mouse is."""
        marks = self._marks()
        await (self.page.mouse.down() if down else self.page.mouse.up())
        x, y = self.cursor
        return await self._settled(
            marks, f"{'Pressed' if down else 'Released'} the left button at ({x}, {y})."
        )

    async def pointer_drag(self, start: tuple[int, int], end: tuple[int, int]) -> Observation:
        self._on_screen(*start)
        self._on_screen(*end)
        marks = self._marks()
        await self.page.mouse.move(*start)
        await self.page.mouse.down()
        await self.page.mouse.move(*end, steps=10)
        await self.page.mouse.up()
        self.cursor = end
        return await self._settled(marks, f"Dragged from {start} to {end}.")

    async def pointer_scroll(self, x: int | None, y: int | None, direction: str, amount: int) -> Observation:
        """Turn the wheel ``amount`` steps (``direction``: up, down, left or right) over a point."""
        if x is not None and y is not None:
            self._on_screen(x, y)
            await self.page.mouse.move(x, y)
            self.cursor = (x, y)
        step = SCROLL_STEP_PX * max(1, min(amount, 50))
        dx, dy = {"up": (0, -step), "down": (0, step), "left": (-step, 0), "right": (step, 0)}[direction]
        await self.page.mouse.wheel(dx, dy)
        await self.page.wait_for_timeout(POINTER_SETTLE_MS)
        return await self.observe(f"Scrolled {direction} {amount} step(s).")

    async def keyboard_type(self, text: str) -> Observation:
        marks = self._marks()
        try:
            await self.page.keyboard.type(text)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Typing did not work: {_first_line(exc)}") from None
        return await self._settled(marks, f"Typed {len(text)} character(s).")

    async def keyboard_press(self, keys: str, hold_seconds: float = 0.0) -> Observation:
        """Press a key or a combination ("Return", "ctrl+a"); several, separated by spaces, in turn. With
        ``hold_seconds``, hold it down that long."""
        combos = [_combination(combo) for combo in keys.split()]
        if not combos:
            raise BrowserActionFailed("Name the key to press (for example Return or ctrl+a).")
        marks = self._marks()
        try:
            for combo in combos:
                if hold_seconds > 0:
                    parts = combo.split("+")
                    for key in parts:
                        await self.page.keyboard.down(key)
                    await self.page.wait_for_timeout(min(hold_seconds, MAX_WAIT_SECONDS) * 1000)
                    for key in reversed(parts):
                        await self.page.keyboard.up(key)
                else:
                    await self.page.keyboard.press(combo)
        except PlaywrightError as exc:
            raise BrowserActionFailed(f"Pressing {keys} did not work: {_first_line(exc)}") from None
        return await self._settled(marks, f"Pressed {keys}.")

    async def wait(self, seconds: float) -> Observation:
        seconds = max(0.0, min(seconds, MAX_WAIT_SECONDS))
        await self.page.wait_for_timeout(seconds * 1000)
        return await self.observe(f"Waited {seconds:g} s.")

    def _on_screen(self, x: int, y: int) -> None:
        width, height = VIEWPORT["width"], VIEWPORT["height"]
        if not (0 <= x < width and 0 <= y < height):
            raise BrowserActionFailed(f"({x}, {y}) is off the screen, which is {width}x{height}.")

    def _marks(self) -> tuple[int, int]:
        """Where the page's loads and the proxy's refusals stand before an action."""
        if self._loads is None:
            self._loads = _PageLoads.watching(self.page)
        return self._loads.navigations, len(self.proxy.refusals)

    async def _settled(self, marks: tuple[int, int], note: str) -> Observation:
        """The screen once a page the action started loading has loaded (a click on a link, Enter in a
        form): such actions do not wait for it themselves."""
        assert self._loads is not None
        navigations, refusals = marks
        await self.page.wait_for_timeout(POINTER_SETTLE_MS)
        if self._loads.navigations > navigations:
            await self._loads.loaded(self.page, self.timeout_ms)
        return await self.observe(f"{note} {self._refusal_note(refusals)}".strip())

    async def _element(self, ref: int) -> Locator:
        locator = self.page.locator(selector_of(ref))
        if await locator.count() == 0:
            raise BrowserActionFailed(
                f"There is no element [{ref}] on the page now; read the page again for the current numbers."
            )
        return locator.first

    def _refusal_note(self, mark: int) -> str:
        refused = self.proxy.refusals_since(mark)
        if not refused:
            return ""
        return "Some requests were refused: " + "; ".join(dict.fromkeys(refused)) + "."

    def _why(self, url: str, exc: PlaywrightError, mark: int) -> str:
        refused = self.proxy.refusals_since(mark)
        if refused:
            return f"{url} did not load: refused ({refused[-1]})"
        return f"{url} did not load: {_first_line(exc)}"

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(PlaywrightError):
            await self.context.close()
        await self.proxy.close()


@dataclass(eq=False)
class _PageLoads:
    """Counts the navigations of a page's main frame and whether the last one has loaded."""

    navigations: int = 0
    loads_after_last: int = 0

    @classmethod
    def watching(cls, page: Page) -> _PageLoads:
        loads = cls()

        def requested(request: Request) -> None:
            if request.is_navigation_request() and request.frame == page.main_frame:
                loads.navigations += 1
                loads.loads_after_last = 0

        def loaded(_: Page) -> None:
            loads.loads_after_last += 1

        page.on("request", requested)
        page.on("load", loaded)
        return loads

    async def loaded(self, page: Page, timeout_ms: int) -> None:
        """Wait (within ``SETTLE_MS``) until the page the last navigation asked for has loaded."""
        deadline = time.monotonic() + min(SETTLE_MS, timeout_ms) / 1000
        while self.loads_after_last == 0 and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(PlaywrightError):
                await page.wait_for_event("load", timeout=left * 1000)


def _combination(combo: str) -> str:
    """A combination ("ctrl+a", "CTRL+A") as Playwright presses it ("Control+a": a letter held with a
    modifier is the key, not the capital it types)."""
    keys = [_key_name(key) for key in combo.split("+") if key.strip()]
    if len(keys) > 1 and len(keys[-1]) == 1:
        keys[-1] = keys[-1].lower()
    return "+".join(keys)


def _key_name(key: str) -> str:
    """A key as Playwright names it, from a computer-use model's name for it ("Return", "ctrl", "a")."""
    key = key.strip()
    named = KEY_NAMES.get(key.lower())
    if named is not None:
        return named
    if len(key) > 1 and key[0] in "fF" and key[1:].isdigit():
        return f"F{key[1:]}"
    return key


def _read_capped(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise BrowserActionFailed(
            f"The file is {size // 1024} KB; files up to {max_bytes // 1024} KB can be kept."
        )
    return path.read_bytes()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__


PLAN_BROWSERS_BUSY = (
    "The organisation's plan allows {at_once} browser(s) at once and they are all open; try again in a few "
    "minutes."
)


class BrowserPool:
    """The process's Chromium and the sessions open on it (see the module's docstring)."""

    def __init__(self, settings: Settings, *, resolver: Resolver = system_resolver) -> None:
        self.executable = settings.browser_executable
        self.size = settings.browser_pool_size
        self.idle_seconds = settings.browser_idle_seconds
        self.timeout_ms = int(settings.browser_action_timeout_seconds * 1000)
        self.policy = EgressPolicy.of(settings.egress_allow)
        self.resolver = resolver
        self._sessions: dict[str, BrowserSession] = {}
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._start_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def of_org(self, org_id: str) -> int:
        return sum(1 for s in self._sessions.values() if s.org_id == org_id)

    async def _chromium(self) -> Browser:
        async with self._start_lock:
            if self._browser is None or not self._browser.is_connected():
                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=str(self.executable), args=CHROMIUM_ARGS, headless=True
                )
                if self._reaper is None:
                    self._reaper = asyncio.create_task(self._reap_forever())
            return self._browser

    async def session(self, key: str, org_id: str, at_once: int | None = None) -> BrowserSession:
        """The session for ``key`` (a conversation's or a task's), opened when there is none.

        Raises :class:`BrowserBusy` when the org has the browsers its plan allows (``at_once``) open, or the
        pool is full of sessions in use."""
        async with self._open_lock:
            found = self._sessions.get(key)
            if found is not None and not found.closed:
                if found.org_id != org_id:  # keys carry their owner's ids; never hand one across orgs
                    raise BrowserBusy("This browser belongs to someone else.")
                found.last_used = time.monotonic()
                return found
            if at_once is not None and self.of_org(org_id) >= at_once:
                raise BrowserBusy(PLAN_BROWSERS_BUSY.format(at_once=at_once))
            if len(self._sessions) >= self.size:
                await self._evict_one()
            browser = await self._chromium()
            proxy = EgressProxy(self.policy, self.resolver)
            proxy_url = await proxy.start()
            context = await browser.new_context(
                proxy={"server": proxy_url, "bypass": BYPASS_NOTHING},
                viewport=VIEWPORT,  # type: ignore[arg-type]  # Playwright's TypedDict
                accept_downloads=True,
                service_workers="block",  # a worker's requests would not show in the page's own
            )
            context.set_default_timeout(self.timeout_ms)
            page = await context.new_page()
            opened = BrowserSession(key, org_id, context, page, proxy, self.timeout_ms)
            self._sessions[key] = opened
            return opened

    async def _evict_one(self) -> None:
        idle = sorted((s for s in self._sessions.values() if not s.busy), key=lambda s: s.last_used)
        if not idle:
            raise BrowserBusy("Every browser of this service is in use; try again in a minute.")
        await self._drop(idle[0])

    async def _drop(self, session: BrowserSession) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        await session.close()

    async def close_session(self, key: str) -> bool:
        """Close the session for ``key``; whether one was open."""
        session = self._sessions.get(key)
        if session is None:
            return False
        await self._drop(session)
        return True

    async def reap(self) -> int:
        """Close the sessions idle for longer than the idle time; how many were closed."""
        now = time.monotonic()
        stale = [s for s in self._sessions.values() if not s.busy and now - s.last_used > self.idle_seconds]
        for session in stale:
            await self._drop(session)
        return len(stale)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_seconds / 4, 1.0))
            try:
                await self.reap()
            except PlaywrightError as exc:  # a crashed browser: the next session starts another
                log.warning("closing idle browsers failed", error=str(exc))

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for session in list(self._sessions.values()):
            await self._drop(session)
        if self._browser is not None:
            with contextlib.suppress(PlaywrightError):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
