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
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from hutch.browser.egress_proxy import BYPASS_NOTHING, EgressProxy
from hutch.browser.page_text import READ_PAGE_SCRIPT, PageReading, selector_of
from hutch.core.egress import EgressPolicy, Resolver, system_resolver
from hutch.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")
VIEWPORT = {"width": 1280, "height": 800}
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


def _read_capped(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise BrowserActionFailed(
            f"The file is {size // 1024} KB; files up to {max_bytes // 1024} KB can be kept."
        )
    return path.read_bytes()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__


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
                raise BrowserBusy(
                    f"The organisation's plan allows {at_once} browser(s) at once and they are all open; "
                    "try again in a few minutes."
                )
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

    async def close_session(self, key: str) -> None:
        session = self._sessions.get(key)
        if session is not None:
            await self._drop(session)

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
