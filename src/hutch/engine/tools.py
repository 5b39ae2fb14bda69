"""The tools agents can enable, in one registry; later domains register theirs here too.

Every tool receives :class:`EngineDeps`, scoped to the agent and the end user it is talking to; memory goes
through its fact store (rows in the reply's transaction, or a dedicated runtime's workspace).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_ai import ModelRetry, RunContext, Tool

from hutch.core.egress import EgressPolicy
from hutch.engine.browser_tools import BROWSER, browser_toolset
from hutch.engine.deps import EngineDeps
from hutch.engine.metering import METERED
from hutch.engine.web_fetch import read_page
from hutch.engine.web_search import (
    MAX_RESULTS,
    QUERY_MAX_CHARS,
    WebSearchFailed,
    build_web_search,
    results_for_model,
    search_cost_micro_usd,
)
from hutch.settings import Settings


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    build: Callable[[Settings, bool], Tool[EngineDeps]]  # (settings, strict) -> the pydantic-ai tool
    # Why an agent may not enable it on this deployment (a setting the operator has not made), or None.
    unavailable: Callable[[Settings], str | None] | None = None
    # A toolset under one name (``browser``): the tools it stands for, built instead of ``build``.
    expand: Callable[[Settings, bool], list[Tool[EngineDeps]]] | None = None


class ToolRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec] = {}
        # Building a tool derives its JSON schema from the function (about 0.3 ms each); tools hold no
        # per-run state, so each is built once per (settings, strict) and shared by every turn.
        self._built: dict[tuple[str, bool, int], tuple[Settings, list[Tool[EngineDeps]]]] = {}

    def register(self, spec: ToolSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"tool {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def specs(self) -> list[ToolSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)

    def unknown(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self._specs]

    def unavailable(self, names: list[str], settings: Settings) -> list[str]:
        """Why some of these tools cannot be enabled here, one sentence each."""
        reasons = []
        for name in names:
            spec = self._specs.get(name)
            reason = spec.unavailable(settings) if spec is not None and spec.unavailable else None
            if reason:
                reasons.append(reason)
        return reasons

    def build(self, names: list[str], settings: Settings, *, strict: bool) -> list[Tool[EngineDeps]]:
        return [tool for n in names if n in self._specs for tool in self._tools(n, settings, strict)]

    def _tools(self, name: str, settings: Settings, strict: bool) -> list[Tool[EngineDeps]]:
        key = (name, strict, id(settings))
        cached = self._built.get(key)
        if cached is not None and cached[0] is settings:  # the same object, not a new one at a reused id
            return cached[1]
        spec = self._specs[name]
        tools = spec.expand(settings, strict) if spec.expand else [spec.build(settings, strict)]
        self._built[key] = (settings, tools)
        return tools


TOOLS = ToolRegistry()


def cost_per_call(settings: Settings) -> Callable[[str], int]:
    """What one call of a metered tool costs, in micro-USD, by the name the model calls it by."""
    search = search_cost_micro_usd(settings)
    return lambda name: search if name == "web_search" else 0


async def remember(ctx: RunContext[EngineDeps], fact: str) -> str:
    """Save a fact about the user for future conversations (a preference, a detail they shared).

    Args:
        fact: The fact, as one short self-contained sentence.
    """
    deps = ctx.deps
    fact = fact.strip()
    if not fact:
        raise ModelRetry("The fact is empty; pass one short sentence.")
    if deps.end_user is None:
        return "Nothing is remembered in anonymous conversations."
    await deps.facts.add(deps.end_user, fact[:1000])
    return "Saved."


async def forget(ctx: RunContext[EngineDeps], about: str) -> str:
    """Delete saved facts about the user that mention the given words (when they ask you to forget).

    Args:
        about: Words the facts to delete contain.
    """
    deps = ctx.deps
    if deps.end_user is None:
        return "Nothing is remembered in anonymous conversations."
    removed = await deps.facts.forget(deps.end_user, about.strip())
    return f"Forgot {removed} fact(s)."


async def current_time(ctx: RunContext[EngineDeps], timezone: str = "UTC") -> str:
    """The current date and time.

    Args:
        timezone: An IANA time zone such as Europe/Paris; UTC when not given.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ModelRetry(f"Unknown time zone {timezone!r}; use an IANA name such as Europe/Paris.") from None
    moment: datetime = ctx.deps.now.astimezone(zone)
    return moment.strftime("%A %d %B %Y, %H:%M %Z")


async def check_balance(ctx: RunContext[EngineDeps]) -> str:
    """How much the user's organisation has left to spend (credits, time) and its usage this month."""
    if ctx.deps.balance is None:
        return "The balance is not available here."
    return await ctx.deps.balance()


async def search_knowledge(ctx: RunContext[EngineDeps], query: str) -> str:
    """Search the organisation's documents for passages about something (a policy, a price, a procedure).

    Args:
        query: What to look for, in a few words or a question.
    """
    if ctx.deps.knowledge is None:
        return "This agent has no documents to search."
    return await ctx.deps.knowledge(query)


async def get_status(ctx: RunContext[EngineDeps]) -> str:
    """Your own status: name, model, whether you are active, and what you know about this user."""
    deps = ctx.deps
    facts = 0
    if deps.end_user is not None:
        facts = await deps.facts.count(deps.end_user)
    status: dict[str, Any] = {
        "name": deps.agent.name,
        "model": deps.agent.model,
        "status": deps.agent.status.value,
        "channel": deps.channel,
        "facts_remembered_about_this_user": facts,
    }
    if deps.team is not None:
        status["team"] = await deps.team.status()
    return json.dumps(status)


async def handoff_to_human(ctx: RunContext[EngineDeps], reason: str) -> str:
    """Ask a person from the team to take this conversation over: when the user asks for a human, or when
    you cannot help them. Tell the user a person will answer here.

    Args:
        reason: Why, in a short sentence the team reads.
    """
    if ctx.deps.handoff is None:
        return "No person can take over this conversation here."
    return await ctx.deps.handoff(reason.strip()[:300] or "the user asked for a person")


NOT_A_MANAGER = "Only a manager agent can manage employees."


async def deploy_employee(
    ctx: RunContext[EngineDeps], role: str, name: str, task_description: str, dedicated: bool = False
) -> str:
    """Create a new employee (an agent) for the organisation and give it its first task.

    Args:
        role: One of assistant, support, sales, researcher, executive_assistant (or custom).
        name: The employee's name, like "Sales assistant".
        task_description: What the employee should do first, in a sentence or two.
        dedicated: Whether it gets a dedicated runtime of its own (plans allowing).
    """
    if ctx.deps.team is None:
        return NOT_A_MANAGER
    return await ctx.deps.team.deploy(role, name, task_description, dedicated)


async def assign_task(ctx: RunContext[EngineDeps], employee: str, description: str) -> str:
    """Give one of the employees a task.

    Args:
        employee: The employee's name, slug or id.
        description: What to do, in a sentence or two.
    """
    if ctx.deps.team is None:
        return NOT_A_MANAGER
    return await ctx.deps.team.assign(employee, description)


async def list_tasks(ctx: RunContext[EngineDeps], employee: str | None = None) -> str:
    """The latest tasks and their status, of one employee or of everyone.

    Args:
        employee: The employee's name, slug or id; leave out for everyone.
    """
    if ctx.deps.team is None:
        return NOT_A_MANAGER
    return await ctx.deps.team.tasks(employee)


async def cancel_task(ctx: RunContext[EngineDeps], task: str) -> str:
    """Cancel a task that has not finished.

    Args:
        task: The task's id (tsk_...).
    """
    if ctx.deps.team is None:
        return NOT_A_MANAGER
    return await ctx.deps.team.cancel(task)


MANAGER_TOOLS = ("deploy_employee", "assign_task", "list_tasks", "cancel_task", "get_status")


def _plain(function: Callable[..., Any], name: str) -> Callable[[Settings, bool], Tool[EngineDeps]]:
    def build(settings: Settings, strict: bool) -> Tool[EngineDeps]:
        return Tool(function, name=name, strict=strict or None)

    return build


def _web_fetch(settings: Settings, strict: bool) -> Tool[EngineDeps]:
    # Once per settings (the registry keeps the built tool); allowing private addresses allows them all.
    policy = EgressPolicy.of(settings.egress_allow, allow_private=settings.web_fetch_allow_private)

    async def web_fetch(ctx: RunContext[EngineDeps], url: str) -> dict[str, str]:
        """Fetch a web page and return its content as Markdown, with its title.

        Args:
            url: The page's address (http or https).
        """
        return await read_page(url, policy)

    return Tool(web_fetch, name="web_fetch", strict=strict or None, metadata={METERED: True})


WEB_SEARCH_NOT_SET_UP = (
    "Web search is not set up on this service; answer from what you know or with other tools."
)
WEB_SEARCH_FAILED = "The web search did not work this time ({reason}); answer without it or try again later."


def _web_search(settings: Settings, strict: bool) -> Tool[EngineDeps]:
    engine = build_web_search(settings)  # once per settings: the registry keeps the built tool

    async def web_search(ctx: RunContext[EngineDeps], query: str) -> str:
        """Search the web for current information; answers a few results with titles, addresses and
        snippets. Cite the addresses you use.

        Args:
            query: What to look for, in a few words.
        """
        query = " ".join(query.split())[:QUERY_MAX_CHARS]
        if not query:
            raise ModelRetry("The query is empty; pass a few words to search for.")
        if engine is None:
            return WEB_SEARCH_NOT_SET_UP
        try:
            results = await engine.search(query, MAX_RESULTS)
        except WebSearchFailed as exc:
            return WEB_SEARCH_FAILED.format(reason=exc)
        return results_for_model(query, results)

    return Tool(web_search, name="web_search", strict=strict or None, metadata={METERED: True})


def _web_search_unavailable(settings: Settings) -> str | None:
    if build_web_search(settings) is None:
        return "web_search needs a search provider; the operator sets HUTCH_WEB_SEARCH_PROVIDER to enable it"
    return None


for _function, _description in (
    (remember, "Save facts about the user for later conversations."),
    (forget, "Delete saved facts about the user on request."),
    (current_time, "Tell the current date and time in any time zone."),
    (check_balance, "Tell the organisation's remaining balance and usage."),
    (get_status, "Describe the agent's own status."),
    (handoff_to_human, "Hand the conversation to a person from the team (the inbox's takeover)."),
    (search_knowledge, "Search the agent's documents (offered automatically when it has some)."),
    (deploy_employee, "Managers: create an employee agent with its first task."),
    (assign_task, "Managers: give an employee a task."),
    (list_tasks, "Managers: the latest tasks and their status."),
    (cancel_task, "Managers: cancel a task."),
):
    TOOLS.register(ToolSpec(_function.__name__, _description, _plain(_function, _function.__name__)))
TOOLS.register(
    ToolSpec(
        "web_fetch",
        "Read a web page (public addresses only, unless the operator allows private ones).",
        _web_fetch,
    )
)
TOOLS.register(
    ToolSpec(
        "web_search",
        "Search the web (through the provider the operator configures) and cite the results.",
        _web_search,
        unavailable=_web_search_unavailable,
    )
)


def _no_single_tool(settings: Settings, strict: bool) -> Tool[EngineDeps]:
    raise AssertionError("a toolset is built through its expand")


TOOLS.register(
    ToolSpec(
        BROWSER,
        "Drive a real web browser: open pages, read them, click, type, choose, scroll, go back, take "
        "screenshots and download files (public addresses only, unless the operator allows private ones).",
        _no_single_tool,
        expand=lambda settings, strict: browser_toolset(strict),
    )
)
