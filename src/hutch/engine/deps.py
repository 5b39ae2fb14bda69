"""What tools see while an agent answers: the agent, who it is talking to, where, and its memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from hutch.agents.models import Agent
from hutch.settings import Settings

# Reports the balance an org has left and its usage, in words for the model; billing provides it.
BalanceReader = Callable[[], Awaitable[str]]
# Searches the agent's documents, answering in words for the model; the knowledge domain provides it.
KnowledgeSearcher = Callable[[str], Awaitable[str]]
# Asks a person from the org to take the conversation over (given why), answering in words for the model;
# the conversations domain provides it.
HumanHandoff = Callable[[str], Awaitable[str]]


class FactStore(Protocol):
    """Long-term facts about one end user of one agent: rows for shared agents, workspace files for
    dedicated runtimes."""

    async def add(self, end_user: str, fact: str) -> None: ...

    async def forget(self, end_user: str, about: str) -> int: ...

    async def count(self, end_user: str) -> int: ...


class TeamActions(Protocol):
    """What a manager agent can do with its organisation's other agents ("employees"); each answer is in
    words for the model, refusals included (a plan limit, an unknown employee)."""

    async def deploy(self, role: str, name: str, task_description: str, dedicated: bool) -> str: ...

    async def status(self) -> str: ...

    async def assign(self, employee: str, description: str) -> str: ...

    async def tasks(self, employee: str | None) -> str: ...

    async def cancel(self, task_id: str) -> str: ...


# The browser's screen (its viewport), in pixels: computer-use models are told it and point within it.
BROWSER_SCREEN = (1280, 800)


@dataclass(frozen=True)
class BrowserResult:
    """What a browser action answers the model: the page as text, and the screenshot kept of it."""

    text: str
    screenshot_id: str | None = None
    image: bytes | None = None  # the screenshot itself (JPEG), for models that look at the screen
    # What the action did and which page is open, without the page's text: for models that act on the
    # screenshot (computer use), which is their view of the page. Empty: ``text`` says it all.
    brief: str = ""


class BrowserActions(Protocol):
    """The browser of the turn (its conversation's, or its task's): acts, and keeps a screenshot of each
    action; the answer is in words for the model, refusals included. The browser domain provides it."""

    async def act(self, action: str, tool_call_id: str | None, **arguments: Any) -> BrowserResult: ...


@dataclass
class EngineDeps:
    facts: FactStore
    settings: Settings
    agent: Agent
    org_id: str
    org_name: str
    end_user: str | None  # None: an anonymous exchange; nothing is remembered about it
    conversation_id: str | None
    channel: str
    now: datetime
    balance: BalanceReader | None = None
    knowledge: KnowledgeSearcher | None = None
    team: TeamActions | None = None  # for manager agents
    handoff: HumanHandoff | None = None  # a stored conversation's: a person can take it over
    browser: BrowserActions | None = None  # when the agent enables the browser and its plan allows it
    sees_screen: bool = False  # the model works from screenshots: browser actions show it the screen
