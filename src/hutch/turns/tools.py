"""What a turn's tools do with the database while the model answers: each call opens a short unit of work of
its own (committed with its jobs, the connection back in the pool at once), so a turn holds no connection
for the model's seconds, only for the tool's milliseconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TypeVar

from hutch.agents.models import Agent
from hutch.agents.service import org_credentials
from hutch.billing.ledger import Ledger
from hutch.billing.quotas import Quotas
from hutch.conversations.facts import StoredFacts
from hutch.conversations.inbox import InboxService
from hutch.conversations.repository import UsageRepository
from hutch.db.engine import UnitOfWork, unit_of_work
from hutch.db.jobs import WorkerResources
from hutch.engine.deps import FactStore, TeamActions
from hutch.engine.tools import MANAGER_TOOLS
from hutch.i18n import _, ngettext
from hutch.knowledge.service import embed_query, search_with
from hutch.turns.offline_manager import rule_based_reply

T = TypeVar("T")
TimeLeft = Callable[[str], Awaitable[int | None]]
KNOWLEDGE_TOP_K = 5


class TurnTools:
    """The database-backed helpers of one agent's turn, each call in its own short unit of work."""

    def __init__(self, resources: WorkerResources, agent: Agent, time_left: TimeLeft | None = None) -> None:
        self.resources = resources
        self.agent = agent
        self.time_left = time_left

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        async with unit_of_work(self.resources.database, self.resources.jobs) as uow:
            yield uow

    def facts(self) -> FactStore:
        return UnitFacts(self)

    async def balance_and_usage_words(self, now: datetime) -> str:
        async with self.unit() as uow:
            usage = await UsageRepository(uow.session).messages_this_month(self.agent.org_id, now)
            words = await balance_words(uow, self.resources, self.agent.org_id, self.time_left)
        return f"{words} {usage} messages answered this month."

    async def search_words(self, query: str) -> str:
        from hutch.turns.flow import fit_passages  # the flow builds on these tools

        async with self.unit() as uow:
            keys = await org_credentials(uow.session, self.resources.secret_box, self.agent.org_id)
        vector = await embed_query(self.resources.embedder, keys, query)  # between units: nothing held
        async with self.unit() as uow:
            found = await search_with(
                uow.session, self.resources.embedder, self.agent, query, KNOWLEDGE_TOP_K, vector
            )
        passages = fit_passages(found, self.resources.settings.knowledge_prompt_tokens)
        if not passages:
            return "Nothing in the documents matches that."
        return "\n\n".join(f"From [{title}]:\n{text}" for title, text in passages)

    async def handoff(self, conversation_id: str, reason: str) -> str:
        async with self.unit() as uow:
            asked = await InboxService.of(uow, self.resources).request_human(conversation_id, reason)
        if not asked:
            return "This conversation cannot be handed over (it is closed)."
        return "A person from the team has been asked to join; tell the user they will answer here soon."

    def team(self) -> TeamActions | None:
        """A manager's employees and tasks, when the agent uses the tools that need them."""
        if not any(tool in MANAGER_TOOLS and tool != "get_status" for tool in self.agent.tools):
            return None
        return UnitTeam(self)

    async def rule_based_reply(self, text: str, *, demo: bool) -> str:
        return await rule_based_reply(UnitTeam(self), text, demo=demo)

    async def with_team(self, act: Callable[[TeamActions], Awaitable[T]]) -> T:
        # The team is the tasks domain's, which builds on turns: the process's resources hand it over.
        async with self.unit() as uow:
            return await act(self.resources.team(uow, self.resources, self.agent))


class UnitFacts:
    """The end user's facts (memory rows), each change committed on its own."""

    def __init__(self, tools: TurnTools) -> None:
        self.tools = tools

    def _facts(self, uow: UnitOfWork) -> StoredFacts:
        return StoredFacts(uow.session, self.tools.agent.org_id, self.tools.agent.id)

    async def add(self, end_user: str, fact: str) -> None:
        async with self.tools.unit() as uow:
            await self._facts(uow).add(end_user, fact)

    async def forget(self, end_user: str, about: str) -> int:
        async with self.tools.unit() as uow:
            return await self._facts(uow).forget(end_user, about)

    async def count(self, end_user: str) -> int:
        async with self.tools.unit() as uow:
            return await self._facts(uow).count(end_user)


class UnitTeam:
    """A manager's team actions, each in its own unit of work (a deployment commits with its jobs)."""

    def __init__(self, tools: TurnTools) -> None:
        self.tools = tools

    async def deploy(self, role: str, name: str, task_description: str, dedicated: bool) -> str:
        return await self.tools.with_team(lambda team: team.deploy(role, name, task_description, dedicated))

    async def status(self) -> str:
        return await self.tools.with_team(lambda team: team.status())

    async def assign(self, employee: str, description: str) -> str:
        return await self.tools.with_team(lambda team: team.assign(employee, description))

    async def tasks(self, employee: str | None) -> str:
        return await self.tools.with_team(lambda team: team.tasks(employee))

    async def cancel(self, task_id: str) -> str:
        return await self.tools.with_team(lambda team: team.cancel(task_id))


async def balance_words(
    uow: UnitOfWork, resources: WorkerResources, org_id: str, time_left: TimeLeft | None = None
) -> str:
    """The org's plan, prepaid credits and time, in words (for the model and for a /balance command)."""
    balance = await Ledger.of(uow, resources).balance(org_id)
    plan = await Quotas(uow.session, resources.plans).plan_of(org_id)
    credits = f"${balance.credits_cents / 100:,.2f}"
    seconds: int | None = balance.seconds
    if time_left is not None:
        seconds = await time_left(org_id)
    time = (
        _("voice time that is not tracked (the plan includes unlimited voice)")
        if seconds is None
        else ngettext(
            "%(num)d minute of prepaid time left", "%(num)d minutes of prepaid time left", seconds // 60
        )
        % {"num": seconds // 60}
    )
    return _("The organisation is on the {plan} plan, with {credits} of prepaid credits and {time}.").format(
        plan=plan.name, credits=credits, time=time
    )
