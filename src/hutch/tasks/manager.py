"""The manager agent's team: deploying employees (agents) and giving them tasks, in words for the model.

A manager acts for its organisation with the rights of an API key that may read, write and chat: it can do
what the organisation's members can, within the plan's limits, whose refusals it relays in plain words.
When its model cannot be reached, ``hutch.turns.offline_manager`` understands the simplest requests
(deploy, status, help) so the customer is never stuck.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hutch.agents.models import Agent
from hutch.agents.roles import ROLE_TEMPLATES
from hutch.agents.schemas import AgentCreate
from hutch.agents.service import AgentService
from hutch.billing.quotas import Quotas
from hutch.core.errors import HutchError
from hutch.core.principal import Principal, PrincipalKind, Scope
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.runtimes.service import RuntimeService
from hutch.tasks.repository import TaskRepository, TeamRepository
from hutch.tasks.service import Tasks

MANAGER_ROLE = "manager"
LISTED_TASKS = 10


class Team:
    def __init__(self, uow: UnitOfWork, resources: WorkerResources, manager: Agent) -> None:
        self.uow = uow
        self.session = uow.session
        self.staff = TeamRepository(uow.session)
        self.tasks_of_org = TaskRepository(uow.session)
        self.resources = resources
        self.manager = manager
        self.principal = Principal(
            kind=PrincipalKind.API_KEY,
            org_id=manager.org_id,
            scopes=frozenset({Scope.READ, Scope.WRITE, Scope.CHAT}),
        )

    async def _employee(self, ref: str) -> Agent | None:
        return await self.staff.employee(self.manager, ref.strip())

    async def deploy(self, role: str, name: str, task_description: str, dedicated: bool) -> str:
        role = role.strip().lower().replace(" ", "_")
        agents = AgentService.of(self.uow, self.resources)
        try:
            data = AgentCreate(
                name=name.strip()[:100] or "Employee", role=role if role in ROLE_TEMPLATES else "custom"
            )
            agent = await agents.create(self.principal, data)
        except HutchError as refused:
            return f"Could not deploy {name}: {refused.detail}"
        except ValueError as invalid:
            return f"Could not deploy {name}: {invalid}"
        said = [f"Deployed {agent.name} (role {agent.role}, id {agent.id})."]
        if len(task_description.strip()) >= 10:
            task = await Tasks(self.uow).create(self.principal, agent.id, task_description.strip()[:2000])
            said.append(f"First task {task.id} is queued: {task.description}")
        if dedicated:
            runtimes = RuntimeService.of(self.uow, self.resources)
            try:
                await runtimes.request(self.principal, agent.id)
                said.append(
                    "Its dedicated runtime is being provisioned; it answers in shared workers meanwhile."
                )
            except HutchError as refused:
                said.append(f"No dedicated runtime: {refused.detail}")
        return " ".join(said)

    async def status(self) -> str:
        employees = await self.staff.employees(self.manager)
        open_tasks = await self.tasks_of_org.open_in_org(self.manager.org_id)
        quotas = Quotas(self.session, self.resources.plans)
        plan = await quotas.plan_of(self.manager.org_id)
        usage = await quotas.usage(self.manager.org_id, datetime.now(UTC))
        lines = [
            f"Plan {plan.name}: {len(employees) + 1} of {plan.limits.agents or 'unlimited'} agents, "
            f"{usage.get('messages_this_month', 0)} of {plan.limits.messages_per_month or 'unlimited'} "
            "messages this month."
        ]
        for agent in employees:
            mine = [t for t in open_tasks if t.agent_id == agent.id]
            lines.append(f"- {agent.name} ({agent.role}, {agent.status.value}): {len(mine)} open task(s)")
        if not employees:
            lines.append("No employees yet.")
        return "\n".join(lines)

    async def assign(self, employee: str, description: str) -> str:
        agent = await self._employee(employee)
        if agent is None:
            return f"No employee called {employee!r}; deploy one first or check the name."
        if len(description.strip()) < 10:
            return "Describe the task in at least a short sentence."
        task = await Tasks(self.uow).create(self.principal, agent.id, description.strip()[:2000])
        return f"Task {task.id} given to {agent.name}: {task.description}"

    async def tasks(self, employee: str | None) -> str:
        agent_id = None
        if employee:
            agent = await self._employee(employee)
            if agent is None:
                return f"No employee called {employee!r}."
            agent_id = agent.id
        rows = await self.tasks_of_org.newest_with_agent_names(self.manager.org_id, agent_id, LISTED_TASKS)
        if not rows:
            return "No tasks yet."
        return "\n".join(f"- {t.id} ({name}, {t.status.value}): {t.description[:120]}" for t, name in rows)

    async def cancel(self, task_id: str) -> str:
        try:
            task = await Tasks(self.uow).cancel(self.principal, task_id.strip())
        except HutchError as refused:
            return f"Could not cancel {task_id}: {refused.detail}"
        return f"Task {task.id} canceled."
