"""A task in the dashboard: its steps with the screenshots its browser took, and its screen live while it
runs (the same events as ``GET /api/v1/tasks/{id}/live``, for a signed-in member)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from hutch.browser.service import Screenshots
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.tasks.live import live_screens
from hutch.tasks.models import FINISHED
from hutch.tasks.service import Tasks
from hutch.web.agent_pages import load_agent
from hutch.web.deps import ViewerDep, page

router = APIRouter(prefix="/app", include_in_schema=False)


def dashboard_screenshot(screenshot_id: str) -> str:
    return f"/app/screenshots/{screenshot_id}"


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    task_id: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> HTMLResponse:
    task, screenshots = await Tasks(uow).get_with_screenshots(found.principal, task_id, resources.screenshots)
    agent = await load_agent(found, uow, resources, task.agent_id)
    steps = [
        {
            "number": n,
            "title": step.get("title", ""),
            "done": bool(step.get("done")),
            "output": step.get("output"),
            "screenshots": [dashboard_screenshot(s) for s in screenshots.get(n, [])],
        }
        for n, step in enumerate(task.plan or [], start=1)
    ]
    return page(
        request,
        "app/task.html",
        found,
        section="agents",
        task=task,
        agent=agent,
        steps=steps,
        running=task.status not in FINISHED,
    )


@router.get("/tasks/{task_id}/live")
async def task_live(
    task_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> StreamingResponse:
    task = await Tasks(uow).get(found.principal, task_id)
    await uow.checkpoint()  # the stream holds no database connection between its reads
    events = live_screens(resources.database, task.org_id, task.id, url_of=dashboard_screenshot)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/screenshots/{screenshot_id}")
async def screenshot(screenshot_id: str, found: ViewerDep, uow: UoWDep, resources: ResourcesDep) -> Response:
    image = await Screenshots(uow.session, resources.screenshots).image(found.principal, screenshot_id)
    return Response(
        image.data, media_type=image.content_type, headers={"Cache-Control": "private, max-age=3600"}
    )
