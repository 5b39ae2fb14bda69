"""A dedicated agent's task runs on its runtime (a real process), not on the shared engine."""

from __future__ import annotations

import pytest

from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.runtimes.test_runtimes import Runtimes, request_runtime_on_the_fake, runtimes  # noqa: F401 - the fixture

PLAN = '{"steps": [{"title": "Count the open invoices"}]}'


async def test_a_dedicated_agents_task_steps_are_answered_by_its_runtime(
    runtimes: Runtimes,  # noqa: F811
    fake_llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = runtimes
    await request_runtime_on_the_fake(r, fake_llm, monkeypatch)
    assert "ready" in await r.jobs.run_pending()

    fake_llm.script(ScriptedReply(content=PLAN), ScriptedReply(content="There are 7 open invoices."))
    created = await r.client.post(
        f"/api/v1/agents/{r.agent_id}/tasks",
        json={"description": "Count the open invoices in the books"},
        headers=r.owner.headers,
    )
    await r.jobs.run_pending()

    task = (await r.client.get(f"/api/v1/tasks/{created.json()['id']}", headers=r.owner.headers)).json()
    assert task["status"] == "completed", task
    assert task["steps"][0]["output"] == "There are 7 open invoices."
    # Both model calls came from the runtime's process (its engine files what the platform sends under
    # "Instructions from the caller"), with the task's description among them.
    for request in fake_llm.requests[-2:]:
        assert request.headers["authorization"] == "Bearer sk-org-runtime"
        system = " ".join(str(m["content"]) for m in request.body["messages"] if m["role"] == "system")
        assert "Instructions from the caller:" in system
        assert "Count the open invoices in the books" in system
    await r.client.delete(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()
