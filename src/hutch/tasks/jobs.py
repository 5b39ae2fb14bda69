"""Working on tasks: the agent plans the task, then carries out each step with its tools.

Each step is committed when done, so progress shows while the task runs and a cancel stops it before the
next step. A failed model call or an unusable plan fails the task with the reason. Scheduled tasks make a
new run at each time of their schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hutch.agents.models import Agent, Placement
from hutch.browser.agent_browser import task_browser_key
from hutch.browser.leases import BrowserLeases
from hutch.core.errors import HutchError
from hutch.core.ids import new_id
from hutch.db.engine import unit_of_work
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.engine.browser_tools import BROWSER
from hutch.engine.runner import TurnOutcome
from hutch.runtimes.client import close_task_browser, ready_runtime
from hutch.tasks.models import FINISHED, Task, TaskStatus
from hutch.tasks.planning import PLAN_INSTRUCTIONS, PlanError, parse_plan
from hutch.tasks.repository import TaskRepository
from hutch.tasks.service import RUN_JOB, next_run
from hutch.turns.flow import TurnFlow

CHANNEL = "task"
MAX_OUTPUT = 8000


async def _ask(
    ctx: JobContext, task: Task, agent: Agent, prompt: str, extra: list[str], step: int | None = None
) -> TurnOutcome:
    """One turn of the task (phases committed by the turn), metered like any answer. A step's turn works
    in the task's browser (kept between steps), its screenshots filed under the step."""
    flow = TurnFlow(ctx.uow, ctx.resources)
    turn = await flow.begin_unstored(
        agent, CHANNEL, None, prompt, reference=f"{task.id}:{new_id('turn')}", admit=False, on_runtime=True
    )
    turn.task_id, turn.task_step = task.id, step
    turn.context = [f"You are working on a task for your organisation:\n{task.description}", *extra]
    if turn.reads.runtime is not None:  # a dedicated runtime that is ready works on the step
        outcome = await flow.outcome(turn)
    else:
        outcome = await flow.engine.run(flow.request(turn))
    await flow.finish(turn, outcome)
    return outcome


def _finish(task: Task, status: TaskStatus, *, error: str | None = None, result: Any = None) -> str:
    task.status, task.finished_at, task.error = status, datetime.now(UTC), error
    if result is not None:
        task.result = result
    return status.value


@job(RUN_JOB, queue="tasks", lock_per="task_id", retry=False)
async def run_task(ctx: JobContext, task_id: str) -> str:
    try:
        return await _run(ctx, task_id)
    finally:
        # The task's browser lives while its steps run; it closes with the task (or stays for a retry).
        key = task_browser_key(task_id)
        await ctx.resources.browsers.close_session(key)
        await BrowserLeases(ctx.resources.database, ctx.settings.browser_idle_seconds).release(key)
        await _close_on_runtime(ctx, task_id)


async def _close_on_runtime(ctx: JobContext, task_id: str) -> None:
    """The task's browser on its agent's dedicated runtime, closed too (read in a unit of work of its own:
    the task's may have failed)."""
    async with unit_of_work(ctx.resources.database, None) as uow:
        task = await uow.session.get(Task, task_id)
        agent = await uow.session.get(Agent, task.agent_id) if task is not None else None
        if agent is None or agent.placement is not Placement.DEDICATED or BROWSER not in agent.tools:
            return
        target = await ready_runtime(uow.session, ctx.resources.secret_box, agent.id)
    if target is not None:
        await close_task_browser(target, task_id)


async def _run(ctx: JobContext, task_id: str) -> str:
    session = ctx.uow.session
    task = await session.get(Task, task_id, with_for_update=True)
    if task is None or task.status in FINISHED:
        return "nothing to do"
    agent = await session.get(Agent, task.agent_id)
    if agent is None:
        return _finish(task, TaskStatus.FAILED, error="The agent was deleted.")
    task.status, task.started_at = TaskStatus.IN_PROGRESS, task.started_at or datetime.now(UTC)
    await ctx.uow.checkpoint()

    try:
        if task.plan is None:
            outcome = await _ask(ctx, task, agent, PLAN_INSTRUCTIONS, [])
            if not outcome.ok:
                return _finish(task, TaskStatus.FAILED, error=f"Planning failed: {outcome.error}")
            task.plan = parse_plan(outcome.text)
            await ctx.uow.checkpoint()
        steps: list[dict[str, Any]] = [dict(step) for step in task.plan]
        for n, step in enumerate(steps):
            if step.get("done"):
                continue
            await session.refresh(task, with_for_update=True)
            if task.status is TaskStatus.CANCELED:
                return "canceled"
            done = [f"{i + 1}. {s['title']}: {s['output']}" for i, s in enumerate(steps) if s.get("done")]
            context = ["Steps done so far:\n" + "\n".join(done)] if done else []
            prompt = (
                f"Carry out step {n + 1} of {len(steps)}: {step['title']}. Report what you did and found."
            )
            outcome = await _ask(ctx, task, agent, prompt, context, step=n + 1)
            if not outcome.ok:
                return _finish(task, TaskStatus.FAILED, error=f"Step {n + 1} failed: {outcome.error}")
            step["done"], step["output"] = True, outcome.text[:MAX_OUTPUT]
            task.plan = [dict(s) for s in steps]  # a new list, so the JSON column is written
            await ctx.uow.checkpoint()
    except PlanError as exc:
        return _finish(task, TaskStatus.FAILED, error=str(exc))
    except HutchError as exc:  # no usable model, a quota reached
        return _finish(task, TaskStatus.FAILED, error=exc.detail)
    summary = steps[-1]["output"] if steps else ""
    return _finish(task, TaskStatus.COMPLETED, result={"summary": summary, "steps": len(steps)})


@job("tasks.spawn_scheduled", cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def spawn_scheduled(ctx: JobContext, timestamp: int = 0) -> int:
    """Every minute: each scheduled task that is due makes a run of itself, and moves to its next time."""
    now = datetime.now(UTC)
    due = await TaskRepository(ctx.uow.session).lock_due(now)
    for template in due:
        run = Task(
            id=new_id("tsk"),
            org_id=template.org_id,
            agent_id=template.agent_id,
            description=template.description,
            status=TaskStatus.PENDING,
            timezone=template.timezone,
            parent_id=template.id,
        )
        ctx.uow.session.add(run)
        assert template.schedule is not None
        template.next_run_at = next_run(template.schedule, template.timezone, now)
        ctx.uow.defer(RUN_JOB, task_id=run.id)
    return len(due)
