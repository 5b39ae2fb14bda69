"""The ``browser`` toolset: an agent opens pages, reads them, clicks, types, chooses, scrolls, goes back,
looks, and downloads files, in a real browser (``hutch.browser``).

Every action answers the page as text, its interactive elements numbered (``[3] button "Sign in"``), and
keeps a screenshot, named in the tool call's record (``screenshot``) so the inbox and the task page show
it. The tools reach the browser through ``EngineDeps.browser``; without one (the plan leaves the browser
out, or nothing provides it here) they say so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic_ai import ModelRetry, RunContext, Tool
from pydantic_ai.messages import BinaryContent, ToolReturn

from hutch.engine.deps import BrowserResult, EngineDeps
from hutch.engine.metering import METERED

BROWSER = "browser"  # the name an agent's ``tools`` holds for the whole toolset
NO_BROWSER = "No browser is available here (the plan leaves it out); answer without it."
MAX_TYPED_CHARS = 5000


def _answer(result: BrowserResult, sees_screen: bool) -> ToolReturn:
    """The page as text; for a model that works from screenshots, the screen itself too."""
    metadata = {"screenshot": result.screenshot_id} if result.screenshot_id else None
    if sees_screen and result.image:
        screen = BinaryContent(data=result.image, media_type="image/jpeg")
        return ToolReturn(return_value=result.text, content=["The screen now:", screen], metadata=metadata)
    return ToolReturn(return_value=result.text, metadata=metadata)


async def _act(ctx: RunContext[EngineDeps], action: str, **arguments: Any) -> ToolReturn:
    browser = ctx.deps.browser
    if browser is None:
        return ToolReturn(return_value=NO_BROWSER)
    return _answer(await browser.act(action, ctx.tool_call_id, **arguments), ctx.deps.sees_screen)


async def browser_open(ctx: RunContext[EngineDeps], url: str) -> ToolReturn:
    """Open a web page in your browser; answers the page as text, its links, buttons and fields numbered.

    Args:
        url: The page's address (http or https).
    """
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        if "://" in url:
            raise ModelRetry("Only http and https addresses can be opened.")
        url = f"https://{url}"
    return await _act(ctx, "open", url=url)


async def browser_read(ctx: RunContext[EngineDeps]) -> ToolReturn:
    """Read the page open in your browser again (after it changed), with fresh element numbers."""
    return await _act(ctx, "read")


async def browser_click(ctx: RunContext[EngineDeps], element: int) -> ToolReturn:
    """Click a link or button of the page.

    Args:
        element: The element's number, as the last reading of the page shows it ([3] is 3).
    """
    return await _act(ctx, "click", element=element)


async def browser_type(
    ctx: RunContext[EngineDeps], element: int, text: str, submit: bool = False
) -> ToolReturn:
    """Type into a field of the page (what it held is replaced).

    Args:
        element: The field's number, as the last reading of the page shows it.
        text: What to type.
        submit: Press Enter afterwards (sends a search box or a one-field form).
    """
    if len(text) > MAX_TYPED_CHARS:
        raise ModelRetry(f"Type at most {MAX_TYPED_CHARS} characters at once.")
    return await _act(ctx, "type", element=element, text=text, submit=submit)


async def browser_select(ctx: RunContext[EngineDeps], element: int, option: str) -> ToolReturn:
    """Choose an option of a menu (a drop-down) of the page.

    Args:
        element: The menu's number, as the last reading of the page shows it.
        option: The option's text as shown.
    """
    return await _act(ctx, "select", element=element, option=option)


async def browser_scroll(
    ctx: RunContext[EngineDeps], direction: Literal["down", "up"] = "down"
) -> ToolReturn:
    """Scroll the page down (or up) by about a screen.

    Args:
        direction: down or up.
    """
    return await _act(ctx, "scroll", direction=direction)


async def browser_back(ctx: RunContext[EngineDeps]) -> ToolReturn:
    """Go back to the previous page, as the browser's back button does."""
    return await _act(ctx, "back")


async def browser_screenshot(ctx: RunContext[EngineDeps]) -> ToolReturn:
    """Take a screenshot of the page as it is now (the people you work for can see it)."""
    return await _act(ctx, "screenshot")


async def browser_download(ctx: RunContext[EngineDeps], element: int) -> ToolReturn:
    """Download the file a link or button of the page gives, and keep it in the conversation; answers its
    text when it has some (a PDF, a text file).

    Args:
        element: The link's or button's number, as the last reading of the page shows it.
    """
    return await _act(ctx, "download", element=element)


BROWSER_FUNCTIONS: tuple[Callable[..., Awaitable[ToolReturn]], ...] = (
    browser_open,
    browser_read,
    browser_click,
    browser_type,
    browser_select,
    browser_scroll,
    browser_back,
    browser_screenshot,
    browser_download,
)
BROWSER_TOOL_NAMES = frozenset(f.__name__ for f in BROWSER_FUNCTIONS)


def browser_toolset(strict: bool) -> list[Tool[EngineDeps]]:
    """The browser's tools; each call counts as a call to an outside tool (the plan's tool calls)."""
    return [
        Tool(f, name=f.__name__, strict=strict or None, metadata={METERED: True}) for f in BROWSER_FUNCTIONS
    ]
