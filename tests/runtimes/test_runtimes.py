"""Dedicated runtimes with the process driver for real: provisioning, health, restarts, limits, removal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.alerts.models import Alert
from hutch.app import create_app
from hutch.billing.models import BillingAccount, SubscriptionStatus
from hutch.resources import Resources
from hutch.runtimes.drivers.base import Liveness, RuntimeSpec, Started
from hutch.runtimes.drivers.process import ProcessDriver
from hutch.runtimes.jobs import HEALTH_JOB
from hutch.runtimes.models import Runtime
from hutch.settings import Settings
from tests.conftest import LiveDeployment, RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.web.test_dashboard import csrf_of, log_in


@dataclass
class Runtimes:
    client: AsyncClient
    resources: Resources
    session: AsyncSession
    owner: Account
    agent_id: str

    @property
    def url(self) -> str:
        return f"/api/v1/agents/{self.agent_id}/runtime"

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    async def state(self) -> dict[str, Any]:
        answer = await self.client.get(self.url, headers=self.owner.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def run(self, name: str, **kwargs: Any) -> Any:
        return await self.jobs.execute(
            name, kwargs, job_id=0, attempt=0, resources=self.jobs.worker_resources
        )

    async def row(self) -> Runtime:
        found = await self.session.scalar(
            select(Runtime).where(Runtime.agent_id == self.agent_id).execution_options(populate_existing=True)
        )
        assert found is not None
        return found


@pytest.fixture
async def runtimes(
    settings: Settings, database: Any, database_url: str, session: AsyncSession, tmp_path: Path
) -> AsyncIterator[Runtimes]:
    configured = settings.model_copy(update={"data_dir": tmp_path, "runtime_ready_timeout": 30.0})
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Jarvis", "model": "demo/echo"}, headers=owner.headers
        )
        yield Runtimes(client, resources, session, owner, agent.json()["id"])
        left = await session.scalar(select(Runtime.handle).where(Runtime.agent_id == agent.json()["id"]))
        if left and left[0].isdigit():  # a test that failed halfway leaves no process behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(left.split(":")[0]), signal.SIGKILL)
        ProcessDriver().stop_launcher(tmp_path / "runtimes")


async def test_a_runtime_is_provisioned_serves_and_is_restarted_when_killed(runtimes: Runtimes) -> None:
    r = runtimes
    assert (await r.state())["status"] == "none"
    asked = await r.client.post(r.url, headers=r.owner.headers)
    assert asked.status_code == 202 and asked.json()["status"] == "provisioning"
    again = await r.client.post(r.url, headers=r.owner.headers)
    assert again.status_code == 202 and again.json()["status"] == "provisioning"
    assert [name for name, _ in r.jobs.deferred] == ["runtimes.provision"]  # one job, however often asked

    assert "ready" in await r.jobs.run_pending()  # and the owners' "ready" email goes out
    state = await r.state()
    assert state["status"] == "ready" and state["driver"] == "process" and state["attempts"] == 0
    assert state["memory_mb"] > 10 and state["uptime_seconds"] >= 0 and state["cpu_percent"] >= 0
    await log_in(r.client, r.owner.user.email)
    view = (await r.client.get(f"/app/agents/{r.agent_id}/runtime")).text
    assert 'id="runtime-usage"' in view and "% of a core" in view and " MB</dd>" in view
    health = httpx.get(f"{state['endpoint']}/healthz", timeout=5).json()
    assert health["status"] == "ok"
    logs = await r.client.get(f"{r.url}/logs", headers=r.owner.headers)
    assert logs.status_code == 200 and "Uvicorn running" in logs.json()["text"]
    first_handle, endpoint = (await r.row()).handle, state["endpoint"]
    assert first_handle is not None
    agent = (await r.client.get(f"/api/v1/agents/{r.agent_id}", headers=r.owner.headers)).json()
    assert agent["placement"] == "dedicated"

    os.kill(int(first_handle.split(":")[0]), signal.SIGKILL)  # kill -9
    assert (await r.run(HEALTH_JOB, timestamp=0))["restarted"] == 1
    assert await r.jobs.run_pending() == ["ready"]
    restarted = await r.row()
    assert restarted.handle != first_handle and restarted.endpoint == endpoint  # same port, new process
    assert httpx.get(f"{restarted.endpoint}/healthz", timeout=5).status_code == 200

    removed = await r.client.delete(r.url, headers=r.owner.headers)
    assert removed.status_code == 202 and removed.json()["status"] == "none"
    assert await r.jobs.run_pending() == ["destroyed"]
    assert (await r.state())["status"] == "none"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{restarted.endpoint}/healthz", timeout=1)


async def test_a_changed_agent_is_reprovisioned(runtimes: Runtimes) -> None:
    r = runtimes
    await r.client.post(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()
    assert not any((await r.run(HEALTH_JOB, timestamp=0)).values())
    await r.client.patch(
        f"/api/v1/agents/{r.agent_id}", json={"system_prompt": "Be brief."}, headers=r.owner.headers
    )
    assert (await r.run(HEALTH_JOB, timestamp=0))["changed"] == 1
    assert await r.jobs.run_pending() == ["ready"]
    config = (r.resources.settings.data_dir / "runtimes" / r.agent_id / "agent.json").read_text()
    assert "Be brief." in config
    await r.client.delete(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()


async def test_plan_limits_and_host_capacity(
    runtimes: Runtimes, settings: Settings, database: Any, database_url: str
) -> None:
    r = runtimes
    await r.session.execute(update(Org).where(Org.id == r.owner.org.id).values(plan="tiny"))
    await r.session.commit()
    refused = await r.client.post(r.url, headers=r.owner.headers)
    assert refused.status_code == 402 and "dedicated runtime" in refused.json()["detail"]
    await r.session.execute(update(Org).where(Org.id == r.owner.org.id).values(plan="free"))
    await r.session.commit()

    full = build_test_resources(
        settings.model_copy(update={"runtime_local_capacity": 0}), database, database_url
    )
    async with asgi_client(create_app(resources=full)) as client:
        answer = await client.post(r.url, headers=r.owner.headers)
        assert answer.status_code == 409 and "room" in answer.json()["detail"]
        assert (await client.post(r.url, headers=r.owner.headers)).status_code == 409
    assert (await r.state())["status"] == "none"
    [alert] = (await r.session.scalars(select(Alert).where(Alert.kind == "runtime_capacity"))).all()
    assert alert.severity.value == "critical" and alert.occurrences == 2  # one alert, seen twice


@dataclass
class BrokenDriver:
    """Starts, then never becomes healthy: its runtime 'process' dies at once."""

    name: str = "process"
    created: list[str] = field(default_factory=list)

    async def create(self, spec: RuntimeSpec) -> Started:
        self.created.append(spec.runtime_id)
        return Started(f"broken-{len(self.created)}", "http://127.0.0.1:9")

    async def status(self, handle: str) -> Liveness:
        return "dead"

    async def stop(self, handle: str) -> None:
        return None

    async def restart(self, spec: RuntimeSpec, handle: str) -> Started:
        return await self.create(spec)

    async def destroy(self, home: Path, handle: str | None) -> None:
        return None

    async def logs(self, home: Path, lines: int = 200) -> str:
        return ""


async def test_failed_attempts_are_retried_then_reported(runtimes: Runtimes) -> None:
    r = runtimes
    broken = BrokenDriver()
    r.resources.runtime_drivers["process"] = broken
    await r.client.post(r.url, headers=r.owner.headers)
    [(name, kwargs)] = r.jobs.deferred
    r.jobs.deferred.clear()
    for attempt in (1, 2):
        with pytest.raises(Exception, match="stopped while starting"):
            await r.run(name, **kwargs)
        state = await r.state()
        assert state["status"] == "error" and state["attempts"] == attempt and "logs" in state["last_error"]
    assert await r.run(name, **kwargs) == "error"  # the third attempt is the last
    assert (await r.state())["attempts"] == 3 and len(broken.created) == 3
    [alert] = (await r.session.scalars(select(Alert).where(Alert.kind == "runtime_error"))).all()
    assert alert.org_id == r.owner.org.id and "3 times" in alert.subject

    # Asking again starts afresh.
    assert (await r.client.post(r.url, headers=r.owner.headers)).json()["status"] == "provisioning"
    assert (await r.state())["attempts"] == 0


async def request_runtime_on_the_fake(
    r: Runtimes, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent on a model the org's key serves from the fake LLM, and its runtime requested."""
    monkeypatch.setenv("HUTCH_PROVIDER_URLS_ALLOW_PRIVATE", "true")  # the runtime reaches the local fake
    key = await r.client.post(
        "/api/v1/provider-keys",
        json={"provider": "openai", "api_key": "sk-org-runtime", "base_url": fake_llm.api_base},
        headers=r.owner.headers,
    )
    assert key.status_code == 201, key.text
    await r.client.patch(
        f"/api/v1/agents/{r.agent_id}", json={"model": "openai/gpt-4o-mini"}, headers=r.owner.headers
    )
    await r.client.post(r.url, headers=r.owner.headers)


async def test_a_dedicated_agent_is_answered_by_its_runtime(
    runtimes: Runtimes, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runtimes
    await request_runtime_on_the_fake(r, fake_llm, monkeypatch)
    fake_llm.script(ScriptedReply(content="Meanwhile, the shared workers answer."))
    chat = f"/api/v1/agents/{r.agent_id}/chat"
    first = await r.client.post(chat, json={"message": "Hello?"}, headers=r.owner.headers)
    assert first.json()["message"]["content"] == "Meanwhile, the shared workers answer."

    assert "ready" in await r.jobs.run_pending()
    fake_llm.script(ScriptedReply(content="Answered in my own process."))
    second = await r.client.post(chat, json={"message": "And now?"}, headers=r.owner.headers)
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["message"]["content"] == "Answered in my own process."
    assert body["message"]["model"] == "openai/gpt-4o-mini" and body["usage"]["input_tokens"] > 0
    sent = fake_llm.requests[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"][-2:] == [
        "Hello?",
        "And now?",
    ]  # history passed
    assert fake_llm.requests[-1].headers["authorization"] == "Bearer sk-org-runtime"

    await r.client.delete(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()


async def test_the_runtime_follows_billing(runtimes: Runtimes) -> None:
    r = runtimes
    await r.client.post(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()
    workspace = r.resources.settings.data_dir / "runtimes" / r.agent_id / "workspace"
    (workspace / "IDENTITY.md").write_text("I am Jarvis.")
    account = BillingAccount(org_id=r.owner.org.id, status=SubscriptionStatus.PAST_DUE)
    r.session.add(account)
    await r.session.commit()

    assert (await r.run(HEALTH_JOB, timestamp=0))["suspended"] == 1
    state = await r.state()
    assert state["status"] == "stopped" and "past due" in state["last_error"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{state['endpoint']}/healthz", timeout=1)
    assert (workspace / "IDENTITY.md").read_text() == "I am Jarvis."  # kept while suspended

    account.status = SubscriptionStatus.ACTIVE  # paid
    await r.session.commit()
    assert (await r.run(HEALTH_JOB, timestamp=0))["resumed"] == 1
    assert "ready" in await r.jobs.run_pending()
    assert (await r.state())["status"] == "ready"
    assert (workspace / "IDENTITY.md").read_text() == "I am Jarvis."

    account.status = SubscriptionStatus.CANCELED
    account.stripe_state_at = datetime.now(UTC) - timedelta(hours=73)  # past the 72-hour grace
    await r.session.commit()
    assert (await r.run(HEALTH_JOB, timestamp=0))["removed"] == 1
    assert await r.jobs.run_pending() == ["destroyed"]
    assert (await r.state())["status"] == "none" and not workspace.exists()


async def test_deleting_the_agent_removes_its_runtime_at_once(runtimes: Runtimes) -> None:
    r = runtimes
    await r.client.post(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()
    endpoint = (await r.state())["endpoint"]
    assert (await r.client.delete(f"/api/v1/agents/{r.agent_id}", headers=r.owner.headers)).status_code == 204
    assert await r.jobs.run_pending() == ["destroyed"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{endpoint}/healthz", timeout=1)


async def test_concurrent_requests_make_one_runtime(live: LiveDeployment, settings: Settings) -> None:
    owner = await create_account(live.session, settings)
    agent = await live.client.post("/api/v1/agents", json={"name": "Busy"}, headers=owner.headers)
    url = f"/api/v1/agents/{agent.json()['id']}/runtime"
    answers = await asyncio.gather(*(live.client.post(url, headers=owner.headers) for _ in range(8)))
    assert {a.status_code for a in answers} == {202}
    count = await live.session.scalar(
        select(func.count()).select_from(Runtime).where(Runtime.agent_id == agent.json()["id"])
    )
    assert count == 1
    assert isinstance(live.resources.jobs, RecordingJobQueue)
    provisions = [name for name, _ in live.resources.jobs.deferred if name == "runtimes.provision"]
    assert provisions == ["runtimes.provision"]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [("create", "no room on the host"), ("never healthy", "not ready within")],
)
async def test_a_failure_at_each_step_is_recorded_and_retried(
    runtimes: Runtimes, failure: str, reason: str
) -> None:
    r = runtimes
    r.resources.runtime_drivers["process"] = FlakyDriver(failure)
    r.resources.settings.runtime_ready_timeout = 0.3  # this test's own copy of the settings
    await r.client.post(r.url, headers=r.owner.headers)
    [(name, kwargs)] = r.jobs.deferred
    r.jobs.deferred.clear()
    with pytest.raises(Exception, match=reason):
        await r.run(name, **kwargs)
    state = await r.state()
    assert state["status"] == "error" and reason in state["last_error"] and state["attempts"] == 1


@dataclass
class FlakyDriver(BrokenDriver):
    """Fails at creation, or starts a 'runtime' that never answers its health check."""

    failure: str = "create"

    def __init__(self, failure: str) -> None:
        super().__init__()
        self.failure = failure

    async def create(self, spec: RuntimeSpec) -> Started:
        if self.failure == "create":
            raise RuntimeError("no room on the host")
        return Started("flaky-1", "http://127.0.0.1:9")

    async def status(self, handle: str) -> Liveness:
        return "running"


async def test_the_agents_placement_requests_and_releases_its_runtime(runtimes: Runtimes) -> None:
    r = runtimes
    agent_url = f"/api/v1/agents/{r.agent_id}"
    dedicated = await r.client.patch(agent_url, json={"placement": "dedicated"}, headers=r.owner.headers)
    assert dedicated.status_code == 200 and dedicated.json()["placement"] == "dedicated"
    assert (await r.state())["status"] == "provisioning"
    assert (await r.row()).status.value == "provisioning"

    shared = await r.client.patch(agent_url, json={"placement": "shared"}, headers=r.owner.headers)
    assert shared.status_code == 200 and shared.json()["placement"] == "shared"
    assert (await r.state())["status"] == "none"
    got = await r.client.get(agent_url, headers=r.owner.headers)
    assert got.json()["placement"] == "shared"


async def test_a_plan_without_dedicated_runtimes_answers_402_naming_it(runtimes: Runtimes) -> None:
    r = runtimes
    await r.session.execute(update(Org).where(Org.id == r.owner.org.id).values(plan="tiny"))
    await r.session.commit()
    agent_url = f"/api/v1/agents/{r.agent_id}"
    refused = await r.client.patch(
        agent_url, json={"placement": "dedicated", "name": "Renamed"}, headers=r.owner.headers
    )
    assert refused.status_code == 402
    assert refused.json()["detail"] == (
        "The Tiny plan allows 0 dedicated runtimes; upgrade the plan to add more."
    )
    got = (await r.client.get(agent_url, headers=r.owner.headers)).json()
    assert (got["placement"], got["name"]) == ("shared", "Jarvis")  # nothing changed
    assert (await r.state())["status"] == "none"
    created = await r.client.post(
        "/api/v1/agents", json={"name": "Other", "placement": "dedicated"}, headers=r.owner.headers
    )
    assert created.status_code == 402 and "Tiny plan" in created.json()["detail"]


async def test_placement_dedicated_past_the_plans_runtimes_answers_402_and_changes_nothing(
    runtimes: Runtimes,
) -> None:
    r = runtimes
    await r.session.execute(update(Org).where(Org.id == r.owner.org.id).values(plan="one-runtime"))
    await r.session.commit()
    first = await r.client.patch(
        f"/api/v1/agents/{r.agent_id}", json={"placement": "dedicated"}, headers=r.owner.headers
    )
    assert first.status_code == 200 and (await r.state())["status"] == "provisioning"
    other = await r.client.post("/api/v1/agents", json={"name": "Other"}, headers=r.owner.headers)
    other_url = f"/api/v1/agents/{other.json()['id']}"

    refused = await r.client.patch(other_url, json={"placement": "dedicated"}, headers=r.owner.headers)
    assert refused.status_code == 402
    assert refused.json()["detail"] == (
        "The One runtime plan allows 1 dedicated runtime; upgrade the plan to add more."
    )
    assert (await r.client.get(other_url, headers=r.owner.headers)).json()["placement"] == "shared"
    assert (await r.client.get(f"{other_url}/runtime", headers=r.owner.headers)).json()["status"] == "none"
    count = await r.session.scalar(
        select(func.count()).select_from(Runtime).where(Runtime.org_id == r.owner.org.id)
    )
    assert count == 1

    # Released from the first agent, the plan's runtime goes to the other.
    await r.client.patch(
        f"/api/v1/agents/{r.agent_id}", json={"placement": "shared"}, headers=r.owner.headers
    )
    moved = await r.client.patch(other_url, json={"placement": "dedicated"}, headers=r.owner.headers)
    assert moved.status_code == 200 and moved.json()["placement"] == "dedicated"
    await r.client.patch(other_url, json={"placement": "shared"}, headers=r.owner.headers)


async def test_the_dashboards_placement_setting_requests_releases_and_is_refused_like_the_api(
    runtimes: Runtimes,
) -> None:
    r = runtimes
    await log_in(r.client, r.owner.user.email)
    settings_url = f"/app/agents/{r.agent_id}/settings"

    async def save(**fields: str) -> Response:
        token = csrf_of(await r.client.get(settings_url))
        form = {"csrf": token, "name": "Jarvis", "model": "openai/gpt-4o", **fields}
        return await r.client.post(settings_url, data=form)

    assert (await save(placement="dedicated")).status_code == 303
    assert (await r.state())["status"] == "provisioning"
    assert (await save(placement="shared")).status_code == 303
    assert (await r.state())["status"] == "none"

    await r.session.execute(update(Org).where(Org.id == r.owner.org.id).values(plan="tiny"))
    await r.session.commit()
    refused = await save(placement="dedicated", name="Renamed")
    assert refused.status_code == 422
    assert "The Tiny plan allows 0 dedicated runtimes" in refused.text
    got = (await r.client.get(f"/api/v1/agents/{r.agent_id}", headers=r.owner.headers)).json()
    assert (got["placement"], got["name"]) == ("shared", "Jarvis")  # nothing changed
