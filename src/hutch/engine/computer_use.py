"""Computer-use models drive the agent's browser through the interface they were trained on.

A turn whose model the catalog marks ``computer_use`` (and whose fallback, if any, is one of the same
provider) is offered its provider's ``computer`` tool — Anthropic's, or OpenAI's on the Responses API —
in place of the text tools that act on numbered elements: the model is told the screen's size, looks at
screenshots and answers with actions at pixel coordinates (``left_click`` at ``[x, y]``, ``type``,
``key``, ``scroll`` ...; OpenAI's ``click``, ``keypress`` ... are translated to these). They run in the same
browser as the text tools (the conversation's or the task's, behind the same egress guard and plan
limits), each keeping a screenshot the same way; the screenshot is what the tool answers the model.

The model keeps the text tools a screen cannot stand in for: ``browser_open`` (the screenshot shows the
page, not an address bar), ``browser_read`` (a long page's text at once, and the element numbers the
next two take), ``browser_select`` (a drop-down's list is drawn outside the page, so it never shows in
a screenshot), ``browser_back`` and ``browser_download`` (the file is kept in the conversation).

Here the tool is an ordinary pydantic-ai tool, marked in its metadata with the screen's size; the
provider's model (``hutch.engine.anthropic_model``, ``hutch.engine.openai_model``) sends a tool so marked
as its computer tool.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic_ai import ModelRetry, RunContext, Tool
from pydantic_ai.messages import BinaryContent, ToolReturn
from pydantic_ai.tools import ToolDefinition

from hutch.engine.browser_tools import BROWSER_TOOL_NAMES, MAX_TYPED_CHARS, NO_BROWSER
from hutch.engine.catalog import ProviderKind
from hutch.engine.deps import BROWSER_SCREEN, BrowserResult, EngineDeps
from hutch.engine.gateway import ResolvedModel
from hutch.engine.metering import METERED

COMPUTER: Final = "computer"  # the tool's name (Anthropic fixes it; OpenAI's calls are named so here)
# The metadata key of the tool definition sent as the provider's computer tool; its value, the screen.
COMPUTER_USE = "computer_use"
ANTHROPIC_COMPUTER_TOOL: Final = "computer_20250124"
ANTHROPIC_COMPUTER_BETA = "computer-use-2025-01-24"
OPENAI_COMPUTER_TOOL: Final = "computer_use_preview"
ScreenInterface = Literal["anthropic", "openai"]
KEPT_TEXT_TOOLS = frozenset(
    {"browser_open", "browser_read", "browser_select", "browser_back", "browser_download"}
)

ComputerAction = Literal[
    "screenshot",
    "left_click",
    "right_click",
    "middle_click",
    "double_click",
    "triple_click",
    "mouse_move",
    "left_click_drag",
    "left_mouse_down",
    "left_mouse_up",
    "scroll",
    "type",
    "key",
    "hold_key",
    "wait",
    "cursor_position",
]


def screen_interface(primary: ResolvedModel, fallback: ResolvedModel | None) -> ScreenInterface | None:
    """Through which provider's computer tool the turn's browser is offered: the primary model's, when it
    is marked ``computer_use`` and the fallback (which gets the same tools), if any, is of the same kind;
    None for the text toolset."""
    kinds = {
        model.provider.kind if model.spec.computer_use else None
        for model in (primary, fallback)
        if model is not None
    }
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is ProviderKind.ANTHROPIC:
        return "anthropic"
    if kind is ProviderKind.OPENAI:
        return "openai"
    return None


def computer_display(tool: ToolDefinition) -> dict[str, Any] | None:
    """The screen a tool definition is marked with (``display_width_px``, ``display_height_px``), when it
    stands for a provider's computer tool."""
    display = (tool.metadata or {}).get(COMPUTER_USE)
    return display if tool.name == COMPUTER and isinstance(display, dict) else None


async def computer(
    ctx: RunContext[EngineDeps],
    action: ComputerAction,
    coordinate: list[int] | None = None,
    text: str | None = None,
    start_coordinate: list[int] | None = None,
    scroll_direction: Literal["up", "down", "left", "right"] | None = None,
    scroll_amount: int | None = None,
    duration: float | None = None,
) -> ToolReturn:
    """Use the browser's screen: look at it, point, click, type and press keys.

    Args:
        action: What to do.
        coordinate: [x, y] in pixels, for clicks, moving the mouse, the end of a drag and scrolling.
        text: What to type; the key or combination to press ("Return", "ctrl+a"); keys to hold on a click.
        start_coordinate: [x, y] where a drag starts.
        scroll_direction: up, down, left or right.
        scroll_amount: How many steps of the wheel to scroll.
        duration: Seconds to wait, or to hold a key.
    """
    browser = ctx.deps.browser
    if browser is None:
        return ToolReturn(return_value=NO_BROWSER)
    if text is not None and len(text) > MAX_TYPED_CHARS:
        raise ModelRetry(f"Type at most {MAX_TYPED_CHARS} characters at once.")
    if action == "screenshot":
        result = await browser.act("screenshot", ctx.tool_call_id)
    else:
        arguments = {
            "coordinate": coordinate,
            "text": text,
            "start_coordinate": start_coordinate,
            "scroll_direction": scroll_direction,
            "scroll_amount": scroll_amount,
            "duration": duration,
        }
        given = {name: value for name, value in arguments.items() if value is not None}
        result = await browser.act(f"computer:{action}", ctx.tool_call_id, **given)
    return screen_answer(result)


def screen_answer(result: BrowserResult) -> ToolReturn:
    """The tool's answer: what the action did and the page's address, then the screen as an image (the
    tool result's content, as Anthropic's computer tool expects it)."""
    metadata = {"screenshot": result.screenshot_id} if result.screenshot_id else None
    words = result.brief or result.text
    if result.image is None:
        return ToolReturn(return_value=words, metadata=metadata)
    screen = BinaryContent(data=result.image, media_type="image/jpeg")
    return ToolReturn(return_value=[words, screen], metadata=metadata)


async def openai_computer(ctx: RunContext[EngineDeps], action: dict[str, Any]) -> ToolReturn:
    """Use the browser's screen (OpenAI's computer tool: its ``computer_call`` items' actions).

    Args:
        action: The action as OpenAI's computer-use model gives it ({"type": "click", "x": 10, ...}).
    """
    browser = ctx.deps.browser
    if browser is None:
        return ToolReturn(return_value=NO_BROWSER)
    # Refusals are answered in words, not retried: the answer to a computer call must be a screen.
    try:
        name, arguments = _from_openai(action)
    except (KeyError, TypeError, ValueError):
        return ToolReturn(return_value=f"This computer action is not understood: {action!r}")
    if len(str(arguments.get("text") or "")) > MAX_TYPED_CHARS:
        return ToolReturn(return_value=f"Type at most {MAX_TYPED_CHARS} characters at once.")
    return screen_answer(await browser.act(name, ctx.tool_call_id, **arguments))


def _from_openai(action: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An OpenAI computer action as the browser's action and its arguments (``AgentBrowser.act``)."""
    kind = str(action["type"])
    keys = "+".join(str(key) for key in action.get("keys") or [])
    if kind == "screenshot":
        return "screenshot", {}
    if kind in ("click", "double_click"):
        at = [int(action["x"]), int(action["y"])]
        button = str(action.get("button") or "left")
        if button == "back":
            return "back", {}
        if button == "forward":
            return "computer:key", {"text": "alt+Right"}
        pressed = {"right": "right_click", "wheel": "middle_click"}.get(button, "left_click")
        name = "double_click" if kind == "double_click" else pressed
        return f"computer:{name}", {"coordinate": at, "text": keys}
    if kind == "move":
        return "computer:mouse_move", {"coordinate": [int(action["x"]), int(action["y"])]}
    if kind == "drag":
        path = [[int(point["x"]), int(point["y"])] for point in action["path"]]
        return "computer:left_click_drag", {"start_coordinate": path[0], "coordinate": path[-1]}
    if kind == "scroll":
        dx, dy = int(action.get("scroll_x") or 0), int(action.get("scroll_y") or 0)
        direction = ("down" if dy > 0 else "up") if dy else ("right" if dx > 0 else "left")
        steps = max(1, round(abs(dy or dx) / 100))
        return "computer:scroll", {
            "coordinate": [int(action["x"]), int(action["y"])],
            "scroll_direction": direction,
            "scroll_amount": steps,
        }
    if kind == "type":
        return "computer:type", {"text": str(action["text"])}
    if kind == "keypress":
        return "computer:key", {"text": keys}
    if kind == "wait":
        return "computer:wait", {"duration": 1.0}
    raise ValueError(kind)


def computer_tool(strict: bool, interface: ScreenInterface = "anthropic") -> Tool[EngineDeps]:
    width, height = BROWSER_SCREEN
    return Tool(
        computer if interface == "anthropic" else openai_computer,
        name=COMPUTER,
        strict=strict or None,
        metadata={METERED: True, COMPUTER_USE: {"display_width_px": width, "display_height_px": height}},
    )


def with_computer(
    tools: list[Tool[EngineDeps]], strict: bool, interface: ScreenInterface = "anthropic"
) -> list[Tool[EngineDeps]]:
    """The turn's tools with the browser's element tools replaced by the computer tool (see the module's
    docstring for the ones kept); unchanged when the browser is not among them."""
    if not any(tool.name in BROWSER_TOOL_NAMES for tool in tools):
        return tools
    kept = [tool for tool in tools if tool.name not in BROWSER_TOOL_NAMES or tool.name in KEPT_TEXT_TOOLS]
    return [*kept, computer_tool(strict, interface)]
