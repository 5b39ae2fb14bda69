"""Tasks: create (now, or on a schedule), read, change while not started, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from hutch.agents.repository import AgentRepository
from hutch.browser.screenshots import ScreenshotStore
from hutch.browser.service import Screenshots
from hutch.core.errors import Conflict, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.tasks.models import FINISHED, Task, TaskStatus
from hutch.tasks.repository import TaskRepository

RUN_JOB = "tasks.run"


def next_run(schedule: str, timezone: str, after: datetime) -> datetime:
    """The schedule's next time after ``after``, read in the task's time zone (so 9:00 stays 9:00 across
    daylight-saving changes), in UTC."""
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    following: datetime = croniter(schedule, local).get_next(datetime)
    return following.astimezone(UTC)


class Tasks:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self.tasks = TaskRepository(uow.session)

    async def create(
        self,
        principal: Principal,
        agent_id: str,
        description: str,
        schedule: str | None = None,
        timezone: str = "UTC",
    ) -> Task:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        task = Task(
            id=new_id("tsk"),
            org_id=agent.org_id,
            agent_id=agent.id,
            description=description,
            status=TaskStatus.SCHEDULED if schedule else TaskStatus.PENDING,
            schedule=schedule,
            timezone=timezone,
            next_run_at=next_run(schedule, timezone, datetime.now(UTC)) if schedule else None,
        )
        self.session.add(task)
        await self.session.flush()
        if not schedule:
            self.uow.defer(RUN_JOB, task_id=task.id)
        return task

    async def page(
        self, principal: Principal, agent_id: str, skip: int, limit: int
    ) -> tuple[list[Task], int]:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return await self.tasks.page_of_agent(agent.org_id, agent.id, skip, limit)

    async def get(self, principal: Principal, task_id: str, *, for_update: bool = False) -> Task:
        task = await self.tasks.get(principal, task_id, for_update=for_update)
        if task is None:
            raise NotFound("Task")
        return task

    async def get_with_screenshots(
        self, principal: Principal, task_id: str, store: ScreenshotStore
    ) -> tuple[Task, dict[int, list[str]]]:
        """The task and its browser's screenshot ids by step."""
        task = await self.get(principal, task_id)
        return task, await Screenshots(self.session, store).by_step(task.org_id, task.id)

    async def update(
        self,
        principal: Principal,
        task_id: str,
        description: str | None,
        schedule: str | None,
        timezone: str | None,
    ) -> Task:
        task = await self.get(principal, task_id, for_update=True)
        if task.status not in (TaskStatus.PENDING, TaskStatus.SCHEDULED):
            raise Conflict(f"The task is {task.status.value}; only a task not started yet can change.")
        if description is not None:
            task.description = description
        if timezone is not None:
            task.timezone = timezone
        if schedule is not None:
            if task.status is not TaskStatus.SCHEDULED:
                raise Conflict("Only a scheduled task has a schedule; create a scheduled task instead.")
            task.schedule = schedule
        if task.status is TaskStatus.SCHEDULED and task.schedule:
            task.next_run_at = next_run(task.schedule, task.timezone, datetime.now(UTC))
        await self.session.flush()
        return task

    async def cancel(self, principal: Principal, task_id: str) -> Task:
        """Stop the task: a running one stops before its next step; a scheduled one makes no more runs."""
        task = await self.get(principal, task_id, for_update=True)
        if task.status in FINISHED:
            raise Conflict(f"The task is already {task.status.value}.")
        task.status, task.finished_at = TaskStatus.CANCELED, datetime.now(UTC)
        task.next_run_at = None
        await self.session.flush()
        return task
