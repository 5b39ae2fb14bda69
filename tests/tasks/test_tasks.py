"""Tasks: planned by the agent's model, worked through step by step, scheduled, canceled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.resources import Resources
from hutch.settings import Settings
from hutch.tasks.models import Task
from hutch.tasks.planning import PlanError, parse_plan
from hutch.tasks.service import next_run
from tests.conftest import LiveDeployment, RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply

PLAN = '{"steps": [{"title": "List the open leads"}, {"title": "Draft a follow-up for each"}]}'


@pytest.mark.parametrize(
    "answer",
    [
        PLAN,
        f"Here is my plan:\n```json\n{PLAN}\n```\nShall I start?",
        '[{"title": "List the open leads"}, "Draft a follow-up for each"]',
        "Sure!\n1. List the open leads\n2) Draft a follow-up   for each\n",
        '{"steps": [{"title": "List the open leads"}, {"title": "Draft a follow-up for each"}',  # cut short
    ],
)
def test_plans_are_read_or_repaired(answer: str) -> None:
    steps = parse_plan(answer)
    assert [s["title"] for s in steps] == ["List the open leads", "Draft a follow-up for each"]
    assert all(s["done"] is False and s["output"] is None for s in steps)


@pytest.mark.parametrize(
    "answer", ["I cannot help with that.", '{"steps": []}', "\n".join(f"{i}. s" for i in range(1, 20))]
)
def test_unusable_plans_fail_clearly(answer: str) -> None:
    with pytest.raises(PlanError):
        parse_plan(answer)


def test_schedules_follow_the_task_time_zone() -> None:
    weekdays_at_nine = "0 9 * * 1-5"
    friday_evening = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)  # Paris is UTC+1 until Sunday the 29th
    assert next_run(weekdays_at_nine, "Europe/Paris", friday_evening) == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )
    assert next_run(weekdays_at_nine, "UTC", friday_evening) == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)


@dataclass
class Office:
    client: AsyncClient
    resources: Resources
    session: AsyncSession
    owner: Account
    agent_id: str

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    async def task(self, task_id: str) -> dict[str, Any]:
        answer = await self.client.get(f"/api/v1/tasks/{task_id}", headers=self.owner.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def give(self, description: str, **extra: Any) -> Any:
        return await self.client.post(
            f"/api/v1/agents/{self.agent_id}/tasks",
            json={"description": description, **extra},
            headers=self.owner.headers,
        )


@pytest.fixture
async def office(
    client: AsyncClient, resources: Resources, session: AsyncSession, settings: Settings
) -> AsyncIterator[Office]:
    owner = await create_account(session, settings)
    agent = await client.post(
        "/api/v1/agents",
        json={"name": "Sally", "role": "sales", "model": "openai/gpt-4o-mini"},
        headers=owner.headers,
    )
    assert agent.status_code == 201, agent.text
    yield Office(client, resources, session, owner, agent.json()["id"])


async def test_a_task_is_planned_then_carried_out_step_by_step(
    office: Office, fake_llm: FakeLLMServer
) -> None:
    o = office
    fake_llm.script(
        ScriptedReply(content=PLAN),
        ScriptedReply(content="Three open leads: Acme, Globex, Initech."),
        ScriptedReply(content="Drafted three follow-ups."),
    )
    given = await o.give("Follow up the open leads this morning")
    assert given.status_code == 201 and given.json()["status"] == "pending"
    assert given.json()["id"].startswith("tsk_")
    assert await o.jobs.run_pending() == ["completed"]
    task = await o.task(given.json()["id"])
    assert task["status"] == "completed" and task["started_at"] and task["finished_at"]
    assert [(s["title"], s["done"]) for s in task["plan"]] == [
        ("List the open leads", True),
        ("Draft a follow-up for each", True),
    ]
    assert task["plan"][0]["output"] == "Three open leads: Acme, Globex, Initech."
    assert task["result"] == {"summary": "Drafted three follow-ups.", "steps": 2}
    second_step = str(fake_llm.requests[-1].body["messages"])
    assert "Follow up the open leads" in second_step and "Acme, Globex" in second_step  # it builds on step 1
    listed = await o.client.get(f"/api/v1/agents/{o.agent_id}/tasks", headers=o.owner.headers)
    assert listed.json()["total"] == 1
    again = await o.client.post(f"/api/v1/tasks/{task['id']}/cancel", headers=o.owner.headers)
    assert again.status_code == 409
    changed = await o.client.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"description": "Something else entirely"},
        headers=o.owner.headers,
    )
    assert changed.status_code == 409


async def test_a_bad_plan_or_a_failed_step_fails_the_task_with_the_reason(
    office: Office, fake_llm: FakeLLMServer
) -> None:
    o = office
    fake_llm.script(ScriptedReply(content="I would rather not."))
    first = (await o.give("Write the quarterly sales report")).json()
    assert await o.jobs.run_pending() == ["failed"]
    assert "no plan" in (await o.task(first["id"]))["error"]

    fake_llm.script(ScriptedReply(content=PLAN), ScriptedReply(status=500, error="upstream broke"))
    second = (await o.give("Follow up the open leads again")).json()
    assert await o.jobs.run_pending() == ["failed"]
    failed = await o.task(second["id"])
    assert failed["status"] == "failed" and failed["error"].startswith("Step 1 failed")


@pytest.mark.parametrize(
    "body",
    [
        {"description": "too short"},
        {"description": "A long enough description", "schedule": "every morning"},
        {"description": "A long enough description", "schedule": "0 9 * * *", "timezone": "Mars/Olympus"},
        {"description": "x" * 2001},
    ],
)
async def test_bad_tasks_are_refused(office: Office, body: dict[str, Any]) -> None:
    answer = await office.client.post(
        f"/api/v1/agents/{office.agent_id}/tasks", json=body, headers=office.owner.headers
    )
    assert answer.status_code == 422
    assert (await office.session.scalars(select(Task))).all() == []


async def test_a_scheduled_task_makes_a_run_when_due(office: Office, fake_llm: FakeLLMServer) -> None:
    o = office
    scheduled = await o.give("Send the morning lead digest", schedule="0 9 * * 1-5", timezone="Europe/Paris")
    body = scheduled.json()
    assert body["status"] == "scheduled" and body["next_run_at"] is not None
    assert o.jobs.deferred == []
    await o.session.execute(
        update(Task).where(Task.id == body["id"]).values(next_run_at=datetime(2020, 1, 1, tzinfo=UTC))
    )
    await o.session.commit()
    spawned = await o.jobs.execute(
        "tasks.spawn_scheduled", {"timestamp": 0}, job_id=0, attempt=0, resources=o.jobs.worker_resources
    )
    assert spawned == 1
    runs = (await o.session.scalars(select(Task).where(Task.parent_id == body["id"]))).all()
    assert [r.status.value for r in runs] == ["pending"]
    template = await o.task(body["id"])
    assert datetime.fromisoformat(template["next_run_at"]) > datetime.now(UTC)
    assert (await o.client.post(f"/api/v1/tasks/{body['id']}/cancel", headers=o.owner.headers)).json()[
        "status"
    ] == "canceled"


async def test_cancel_during_execution_stops_before_the_next_step(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    agent = await live.client.post(
        "/api/v1/agents", json={"name": "Sam", "model": "openai/gpt-4o-mini"}, headers=owner.headers
    )
    fake_llm.script(
        ScriptedReply(content=PLAN),
        ScriptedReply(content="Listed the leads.", delay=1.0),
        ScriptedReply(content="This step must never run."),
    )
    given = (
        await live.client.post(
            f"/api/v1/agents/{agent.json()['id']}/tasks",
            json={"description": "Follow up the open leads"},
            headers=owner.headers,
        )
    ).json()
    jobs = live.resources.jobs
    assert isinstance(jobs, RecordingJobQueue)

    async def cancel_soon() -> int:
        await asyncio.sleep(0.5)  # while step 1 waits for the model
        answer = await live.client.post(f"/api/v1/tasks/{given['id']}/cancel", headers=owner.headers)
        return answer.status_code

    outcome, cancelled = await asyncio.gather(jobs.run_pending(), cancel_soon())
    assert outcome == ["canceled"] and cancelled == 200
    task = (await live.client.get(f"/api/v1/tasks/{given['id']}", headers=owner.headers)).json()
    assert task["status"] == "canceled"
    assert [s["done"] for s in task["plan"]] == [True, False]  # step 1 finished, step 2 never started
