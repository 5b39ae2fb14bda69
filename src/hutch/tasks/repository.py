"""Every query on tasks, and on the team a manager agent leads; org filtering lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.browser.models import Screenshot
from hutch.core.principal import Principal
from hutch.tasks.models import FINISHED, Task, TaskStatus

DUE_PER_RUN = 500


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def readable(self, principal: Principal) -> Select[Task]:
        """The org's tasks, narrowed to the caller's allowed agents when an API key is restricted."""
        stmt = select(Task).where(Task.org_id == principal.org_id)
        if principal.agent_ids is not None:  # a key limited to some agents sees only their tasks
            stmt = stmt.where(Task.agent_id.in_(principal.agent_ids))
        return stmt

    async def get(self, principal: Principal, task_id: str, *, for_update: bool = False) -> Task | None:
        stmt = self.readable(principal).where(Task.id == task_id)
        return await self.session.scalar(stmt.with_for_update() if for_update else stmt)

    async def page_of_agent(
        self, org_id: str, agent_id: str, skip: int, limit: int
    ) -> tuple[list[Task], int]:
        """The agent's tasks, newest first, and how many it has."""
        base = select(Task).where(Task.org_id == org_id, Task.agent_id == agent_id)
        total = int(await self.session.scalar(select(func.count()).select_from(base.subquery())) or 0)
        rows = await self.session.scalars(
            base.order_by(Task.created_at.desc(), Task.id.desc()).offset(skip).limit(limit)
        )
        return list(rows.all()), total

    async def open_in_org(self, org_id: str) -> Sequence[Task]:
        """The org's tasks not finished yet."""
        return (
            await self.session.scalars(
                select(Task).where(Task.org_id == org_id, Task.status.not_in(FINISHED))
            )
        ).all()

    async def newest_with_agent_names(
        self, org_id: str, agent_id: str | None, limit: int
    ) -> Sequence[tuple[Task, str]]:
        """The org's newest tasks (of one agent, if given), each with its agent's name."""
        stmt = select(Task, Agent.name).join(Agent, Agent.id == Task.agent_id).where(Task.org_id == org_id)
        if agent_id is not None:
            stmt = stmt.where(Task.agent_id == agent_id)
        rows = (await self.session.execute(stmt.order_by(Task.created_at.desc()).limit(limit))).all()
        return [(task, name) for task, name in rows]

    async def latest_screen(self, org_id: str, task_id: str) -> tuple[Screenshot | None, TaskStatus | None]:
        """The task's newest browser screenshot and the task's status (None: the task is gone)."""
        status = await self.session.scalar(
            select(Task.status).where(Task.org_id == org_id, Task.id == task_id)
        )
        latest = await self.session.scalar(
            select(Screenshot)
            .where(Screenshot.org_id == org_id, Screenshot.task_id == task_id)
            .order_by(Screenshot.created_at.desc(), Screenshot.id.desc())
            .limit(1)
        )
        return latest, status

    async def lock_due(self, now: datetime) -> Sequence[Task]:
        """Scheduled tasks whose next run is due, locked; those others hold locked are skipped."""
        return (
            await self.session.scalars(
                select(Task)
                .where(Task.status == TaskStatus.SCHEDULED, Task.next_run_at <= now)
                .with_for_update(skip_locked=True)
                .limit(DUE_PER_RUN)
            )
        ).all()


class TeamRepository:
    """The agents a manager leads: the others of its org."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def employee(self, manager: Agent, ref: str) -> Agent | None:
        """The employee with this id, slug or name (any case)."""
        return await self.session.scalar(
            select(Agent)
            .where(
                Agent.org_id == manager.org_id,
                Agent.id != manager.id,
                or_(Agent.id == ref, Agent.slug == ref.lower(), Agent.name.ilike(ref)),
            )
            .limit(1)
        )

    async def employees(self, manager: Agent) -> Sequence[Agent]:
        """Every employee, oldest first."""
        return (
            await self.session.scalars(
                select(Agent)
                .where(Agent.org_id == manager.org_id, Agent.id != manager.id)
                .order_by(Agent.created_at)
            )
        ).all()
