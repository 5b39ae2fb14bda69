"""Tasks for an agent: give one (now or on a schedule), follow its plan and result, change it, cancel it."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from hutch.browser.service import screenshot_url
from hutch.core.bounds import Limit, Skip
from hutch.core.errors import Conflict, Forbidden, NotFound, Unauthorized, error_responses
from hutch.http.authz import Reader, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.tasks.live import live_screens
from hutch.tasks.models import Task
from hutch.tasks.schemas import TaskCreate, TaskList, TaskOut, TaskStep, TaskUpdate
from hutch.tasks.service import Tasks

router = APIRouter(prefix="/api/v1", tags=["tasks"])


def _out(task: Task, screenshots: dict[int, list[str]] | None = None) -> TaskOut:
    out = TaskOut.model_validate(task, from_attributes=True)
    shots = screenshots or {}
    out.steps = [
        TaskStep(
            number=n,
            title=str(step.get("title", "")),
            done=bool(step.get("done")),
            output=step.get("output"),
            screenshots=[screenshot_url(shot) for shot in shots.get(n, [])],
        )
        for n, step in enumerate(task.plan or [], start=1)
    ]
    return out


@router.post(
    "/agents/{agent_id}/tasks",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def create_task(agent_id: str, body: TaskCreate, principal: Writer, uow: UoWDep) -> TaskOut:
    """Give the agent a task: it plans it step by step, then works through the steps with its tools. With
    `schedule` (cron, read in `timezone`), the task runs again at each time of the schedule."""
    task = await Tasks(uow).create(principal, agent_id, body.description, body.schedule, body.timezone)
    return _out(task)


@router.get(
    "/agents/{agent_id}/tasks",
    response_model=TaskList,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def list_tasks(
    agent_id: str,
    principal: Reader,
    uow: UoWDep,
    skip: Skip = 0,
    limit: Limit = 50,
) -> TaskList:
    """The agent's tasks, newest first (scheduled ones and their runs included)."""
    items, total = await Tasks(uow).page(principal, agent_id, skip, limit)
    return TaskList(items=[_out(t) for t in items], total=total)


@router.get("/tasks/{task_id}", response_model=TaskOut, responses=error_responses(Unauthorized, NotFound))
async def get_task(task_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep) -> TaskOut:
    """A task with its plan (each step's title, whether it is done, what it produced), the screenshots its
    browser took in each step (`steps[].screenshots`), and its result."""
    task, screenshots = await Tasks(uow).get_with_screenshots(principal, task_id, resources.screenshots)
    return _out(task, screenshots)


@router.get(
    "/tasks/{task_id}/live",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The latest screen"},
        **error_responses(Unauthorized, NotFound),
    },
)
async def task_live(
    task_id: str, principal: Reader, uow: UoWDep, resources: ResourcesDep
) -> StreamingResponse:
    """The task's screen while it runs, as server-sent `screen` events `{url, step, action, page_url, at}`
    (the latest screen first, then each new one within a second), and a last `end` event `{status}` once
    the task is finished. 404 outside the agent's org."""
    task = await Tasks(uow).get(principal, task_id)
    await uow.checkpoint()  # the stream holds no database connection between its reads
    events = live_screens(resources.database, task.org_id, task.id)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.patch(
    "/tasks/{task_id}",
    response_model=TaskOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def update_task(task_id: str, body: TaskUpdate, principal: Writer, uow: UoWDep) -> TaskOut:
    """Change a task that has not started (or a schedule); 409 once it runs."""
    task = await Tasks(uow).update(principal, task_id, body.description, body.schedule, body.timezone)
    return _out(task)


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def cancel_task(task_id: str, principal: Writer, uow: UoWDep) -> TaskOut:
    """Cancel: a running task stops before its next step; a scheduled one makes no more runs."""
    return _out(await Tasks(uow).cancel(principal, task_id))
