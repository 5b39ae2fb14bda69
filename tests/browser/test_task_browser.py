"""A task's steps drive one browser between them; each step lists its screenshots, and the live view shows
the latest screen to the agent's org only, within a second of a new one."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
from hutch.core.ids import new_id
from hutch.db.engine import Database
from hutch.settings import Settings
from hutch.tasks.live import live_screens
from hutch.tasks.models import Task, TaskStatus
from tests.browser.conftest import call, new_agent, tool_results
from tests.browser.site import TestSite
from tests.conftest import RecordingJobQueue, asgi_client
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.web.test_dashboard import log_in

pytestmark = pytest.mark.usefixtures("browsing")

PLAN = '{"steps": [{"title": "Fill in the first page"}, {"title": "Fill in the second page"}]}'


def sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_a_task_fills_a_two_page_form_in_one_browser_and_each_step_shows_its_screens(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    settings: Settings,
    fake_llm: FakeLLMServer,
    site: TestSite,
    jobs: RecordingJobQueue,
) -> None:
    owner = await create_account(session, settings, org_name="Applicants")
    stranger = await create_account(session, settings, org_name="Onlookers")
    agent = await new_agent(client, owner)
    fake_llm.script(
        ScriptedReply(content=PLAN),
        call("browser_open", url=f"{site.base_url}/apply/1"),
        call("browser_type", element=1, text="Grace Hopper"),
        call("browser_select", element=2, option="Team"),
        call("browser_click", element=3),
        ScriptedReply(content="The first page is sent."),
        call("browser_read"),  # step 2 starts where step 1 left the browser
        call("browser_type", element=1, text="grace@example.com"),
        call("browser_click", element=2),
        ScriptedReply(content="Application received."),
    )
    created = await client.post(
        f"/api/v1/agents/{agent['id']}/tasks",
        json={"description": "Apply for the team plan as Grace Hopper"},
        headers=owner.headers,
    )
    task_id = created.json()["id"]

    await jobs.run_pending()

    assert site.state.received == [
        ("/apply/1", {"name": "Grace Hopper", "plan": "team"}),
        ("/apply/2", {"email": "grace@example.com"}),
    ]
    assert "Applying as Grace Hopper|team" in tool_results(fake_llm)[0]
    task = (await client.get(f"/api/v1/tasks/{task_id}", headers=owner.headers)).json()
    assert task["status"] == "completed"
    assert [(s["number"], s["done"], len(s["screenshots"])) for s in task["steps"]] == [
        (1, True, 4),
        (2, True, 3),
    ]
    last = task["steps"][1]["screenshots"][-1]
    image = await client.get(last, headers=owner.headers)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
    assert (await client.get(last, headers=stranger.headers)).status_code == 404

    live = await client.get(f"/api/v1/tasks/{task_id}/live", headers=owner.headers)
    assert live.status_code == 200 and live.headers["content-type"].startswith("text/event-stream")
    assert sse(live.text) == [
        ("screen", {**sse(live.text)[0][1], "url": last, "step": 2, "action": "click"}),
        ("end", {"status": "completed"}),
    ]
    assert (await client.get(f"/api/v1/tasks/{task_id}/live", headers=stranger.headers)).status_code == 404
    assert (await client.get(f"/api/v1/tasks/{task_id}")).status_code == 401
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=stranger.headers)).status_code == 404

    # The dashboard's task page shows each step's screens; a member of another org sees none of it.
    await log_in(client, owner.user.email)
    shown = await client.get(f"/app/tasks/{task_id}")
    assert shown.status_code == 200 and "Fill in the second page" in shown.text
    dashboard_shot = last.replace("/api/v1/screenshots/", "/app/screenshots/")
    assert shown.text.count('<img src="/app/screenshots/') == 7 and dashboard_shot in shown.text
    assert (await client.get(dashboard_shot)).content == image.content
    async with asgi_client(app) as other:
        await log_in(other, stranger.user.email)
        assert (await other.get(f"/app/tasks/{task_id}")).status_code == 404
        assert (await other.get(dashboard_shot)).status_code == 404


async def test_the_live_view_shows_a_new_screen_within_a_second(
    client: AsyncClient, session: AsyncSession, settings: Settings, database: Database
) -> None:
    owner = await create_account(session, settings, org_name="Watchers")
    agent = await new_agent(client, owner)
    task = Task(
        id=new_id("tsk"),
        org_id=owner.org.id,
        agent_id=agent["id"],
        description="Watch me work",
        status=TaskStatus.IN_PROGRESS,
    )
    session.add(task)
    await session.commit()
    stream = live_screens(database, owner.org.id, task.id, interval=0.2)
    assert (await anext(stream)).startswith(":")
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing on screen yet

    session.add(
        Screenshot(
            id=new_id("shot"),
            org_id=owner.org.id,
            agent_id=agent["id"],
            task_id=task.id,
            step=1,
            action="open",
            page_url="https://example.org/",
            storage_key=f"{owner.org.id}/x.jpg",
            content_type="image/jpeg",
            size_bytes=3,
            created_at=datetime.now(UTC),
        )
    )
    await session.commit()
    shown_at = time.monotonic()
    event = await asyncio.wait_for(waiting, 1.0)
    assert time.monotonic() - shown_at < 1.0
    assert event.startswith("id: shot_") and '"step": 1' in event and "event: screen" in event

    task.status = TaskStatus.CANCELED
    await session.commit()
    assert "event: end" in await asyncio.wait_for(anext(stream), 1.0)
    await stream.aclose()
