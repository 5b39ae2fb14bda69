"""The manager agent: it deploys employees and gives them tasks through tool calls, within the plan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.settings import Settings
from hutch.tasks.models import Task
from tests.conversations.test_chat import tool_call
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@dataclass
class Manager:
    client: AsyncClient
    session: AsyncSession
    owner: Account
    agent_id: str

    async def say(self, text: str) -> str:
        answer = await self.client.post(
            f"/api/v1/agents/{self.agent_id}/chat", json={"message": text}, headers=self.owner.headers
        )
        assert answer.status_code == 200, answer.text
        content: str = answer.json()["message"]["content"]
        return content

    async def employees(self) -> list[dict[str, Any]]:
        agents = (await self.client.get("/api/v1/agents", headers=self.owner.headers)).json()["items"]
        return [a for a in agents if a["id"] != self.agent_id]


@pytest.fixture
async def manager(client: AsyncClient, session: AsyncSession, settings: Settings) -> AsyncIterator[Manager]:
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Max", "role": "manager", "model": "openai/gpt-4o-mini"},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    assert "deploy_employee" in created.json()["tools"]
    yield Manager(client, session, owner, created.json()["id"])


def tool_results(fake_llm: FakeLLMServer) -> list[str]:
    """What the tools answered, as the model saw it in the last request."""
    return [str(m["content"]) for m in fake_llm.requests[-1].body["messages"] if m["role"] == "tool"]


async def test_the_manager_deploys_an_employee_with_a_first_task(
    manager: Manager, fake_llm: FakeLLMServer
) -> None:
    m = manager
    fake_llm.script(
        ScriptedReply(
            tool_calls=[
                tool_call(
                    "deploy_employee",
                    {
                        "role": "sales",
                        "name": "Sales assistant",
                        "task_description": "Follow up the open leads every morning",
                    },
                )
            ]
        ),
        ScriptedReply(content="Your sales assistant is ready and already has its first task."),
    )
    reply = await m.say("I need a sales assistant that follows up leads every morning")
    assert reply == "Your sales assistant is ready and already has its first task."
    [employee] = await m.employees()
    assert (employee["name"], employee["role"]) == ("Sales assistant", "sales")
    [task] = (await m.session.scalars(select(Task).where(Task.agent_id == employee["id"]))).all()
    assert task.description == "Follow up the open leads every morning" and task.status.value == "pending"
    [said] = tool_results(fake_llm)
    assert "Deployed Sales assistant" in said and task.id in said

    fake_llm.script(
        ScriptedReply(tool_calls=[tool_call("get_status", {}, "call_s")]),
        ScriptedReply(content="One employee, one open task."),
    )
    assert await m.say("How is my team doing?") == "One employee, one open task."
    status = json.loads(tool_results(fake_llm)[-1])
    assert "Sales assistant (sales, active): 1 open task(s)" in status["team"]

    fake_llm.script(
        ScriptedReply(
            tool_calls=[
                tool_call(
                    "assign_task", {"employee": "Sales assistant", "description": "Call back Globex"}, "c1"
                )
            ]
        ),
        ScriptedReply(tool_calls=[tool_call("list_tasks", {}, "c2")]),
        ScriptedReply(tool_calls=[tool_call("cancel_task", {"task": task.id}, "c3")]),
        ScriptedReply(content="Done."),
    )
    assert await m.say("Have them call Globex back, then cancel the morning follow-up") == "Done."
    assigned, listed, canceled = tool_results(fake_llm)[-3:]
    assert "given to Sales assistant" in assigned and "Call back Globex" in listed
    assert canceled == f"Task {task.id} canceled."


async def test_plan_limits_are_relayed_in_words(manager: Manager, fake_llm: FakeLLMServer) -> None:
    m = manager
    await m.session.execute(update(Org).where(Org.id == m.owner.org.id).values(plan="tiny"))  # 2 agents
    await m.session.commit()
    deploy = {"role": "support", "name": "Helper {n}", "task_description": "Answer the support inbox"}
    for n in (1, 2):
        fake_llm.script(
            ScriptedReply(tool_calls=[tool_call("deploy_employee", {**deploy, "name": f"Helper {n}"})]),
            ScriptedReply(content="Relayed."),
        )
        await m.say("Hire a support agent")
    refusal = tool_results(fake_llm)[-1]
    assert refusal.startswith("Could not deploy Helper 2") and "Tiny plan allows 2 agents" in refusal
    assert [e["name"] for e in await m.employees()] == ["Helper 1"]


async def test_without_its_model_the_manager_still_understands_simple_requests(
    manager: Manager, fake_llm: FakeLLMServer
) -> None:
    m = manager
    fake_llm.script(ScriptedReply(status=500, error="upstream down"))
    reply = await m.say("I need a support agent for our shop")
    assert "Deployed Customer support" in reply and "unreachable" in reply
    fake_llm.script(ScriptedReply(status=500, error="upstream down"))
    status = await m.say("status please")
    assert "Customer support (support, active)" in status and "unreachable" in status
    fake_llm.script(ScriptedReply(status=500, error="upstream down"))
    assert "I can deploy an employee" in await m.say("hmm?")
    messages = (
        await m.client.get(f"/api/v1/agents/{m.agent_id}/conversations", headers=m.owner.headers)
    ).json()
    assert messages["total"] == 1


async def test_with_the_demo_model_the_manager_follows_simple_commands(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/agents", json={"name": "Max", "role": "manager", "model": "demo/echo"}, headers=owner.headers
    )
    demo = Manager(client, session, owner, created.json()["id"])
    reply = await demo.say("Hire a researcher to watch our competitors")
    assert "Deployed Researcher" in reply and "Demo — no AI" in reply
    assert [e["role"] for e in await demo.employees()] == ["researcher"]
