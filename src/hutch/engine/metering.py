"""Tool calls measured and metered while a turn runs.

Every call is timed, and its time recorded on the answer. Calls to tools that reach outside Hutch (web
search and fetch, MCP servers, webhook tools: their tool definitions carry ``metadata={"metered": True}``)
also count against the plan's ``tool_calls_per_month`` and cost what the operator's settings say; once
the plan's calls are used up, the model is told so instead of the call being made, and the turn goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic_ai import RunContext
from pydantic_ai.toolsets import WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

Deps = TypeVar("Deps")
METERED = "metered"  # the metadata key of a tool definition whose calls are metered
TOOL_CALLS_USED_UP = (
    "The organisation's plan allows {limit} calls to outside tools a month and they are used up; answer "
    "without this tool, and say so if it matters."
)


@dataclass(frozen=True)
class CallRecord:
    milliseconds: int
    metered: bool
    cost_micro_usd: int = 0
    refused: bool = False  # not made: the plan's calls were used up


@dataclass
class ToolMeter:
    """One turn's tool calls: what each took, and what the metered ones may still do and cost."""

    remaining: int | None = None  # metered calls the plan still allows this month; None: no limit
    limit: int | None = None
    cost_of: Callable[[str], int] = field(default=lambda name: 0)  # micro-USD per call of a tool
    calls: dict[str, CallRecord] = field(default_factory=dict)  # by tool call id

    @property
    def metered_calls(self) -> int:
        return sum(1 for call in self.calls.values() if call.metered and not call.refused)

    @property
    def cost_micro_usd(self) -> int:
        return sum(call.cost_micro_usd for call in self.calls.values())

    def admits(self) -> bool:
        """Whether one more metered call is allowed, taking it from what is left."""
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


OUTSIDE_BUILTINS = frozenset({"web_fetch", "web_search", "browser"})
CONNECTED_PREFIXES = ("mcp:", "webhook:")  # an org's MCP servers' tools and webhook tools


def reaches_outside(tool_names: list[str]) -> bool:
    """Whether an agent with these tools may make metered calls."""
    return any(name in OUTSIDE_BUILTINS or name.startswith(CONNECTED_PREFIXES) for name in tool_names)


def is_metered(metadata: dict[str, Any] | None) -> bool:
    return bool(metadata and metadata.get(METERED))


@dataclass
class MeteredToolset(WrapperToolset[Deps]):
    """The turn's tools, each call timed, and the metered ones counted (or refused) on the turn's meter."""

    meter: ToolMeter = field(default_factory=ToolMeter)

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Deps], tool: ToolsetTool[Deps]
    ) -> Any:
        metered = is_metered(tool.tool_def.metadata)
        call_id = ctx.tool_call_id or name
        if metered and not self.meter.admits():
            self.meter.calls[call_id] = CallRecord(0, metered=True, refused=True)
            return TOOL_CALLS_USED_UP.format(limit=self.meter.limit)
        started = time.perf_counter()
        try:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)
        finally:
            self.meter.calls[call_id] = CallRecord(
                round((time.perf_counter() - started) * 1000),
                metered,
                self.meter.cost_of(name) if metered else 0,
            )
