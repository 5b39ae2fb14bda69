"""A dedicated agent drives the browser of its own runtime (a real process with its own Chromium): the site
gets what the agent typed, every screen comes back to the platform and is stored as a shared agent's are
(on the message's tool calls, on the task's steps, in the live view), private addresses stay refused, and
the screens are the agent's org's alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.app import create_app
from hutch.browser.models import Screenshot
from hutch.db.engine import Database
from hutch.runtimes.client import close_task_browser, ready_runtime
from hutch.runtimes.drivers.process import ProcessDriver
from hutch.runtimes.models import Runtime
from hutch.settings import Settings
from tests.browser.conftest import call, tool_results
from tests.browser.site import PrivateService, TestSite
from tests.browser.test_task_browser import sse
from tests.conftest import asgi_client, build_test_resources
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.runtimes.test_runtimes import Runtimes, request_runtime_on_the_fake


@pytest.fixture
async def dedicated(
    settings: Settings, database: Database, database_url: str, session: AsyncSession, tmp_path: Path
) -> AsyncIterator[Runtimes]:
    """A deployment whose operator lets tools reach the test sites (127.0.0.1), and an agent with the
    browser that is to get a runtime."""
    configured = settings.model_copy(
        update={"data_dir": tmp_path, "runtime_ready_timeout": 30.0, "egress_allow": ["127.0.0.1"]}
    )
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings, org_name="Remote clerks")
        agent = await client.post(
            "/api/v1/agents", json={"name": "Clerk", "tools": ["browser"]}, headers=owner.headers
        )
        assert agent.status_code == 201, agent.text
        yield Runtimes(client, resources, session, owner, agent.json()["id"])
        left = await session.scalar(select(Runtime.handle).where(Runtime.agent_id == agent.json()["id"]))
        if left and left[0].isdigit():  # a test that failed halfway leaves no process behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(left.split(":")[0]), signal.SIGKILL)
        ProcessDriver().stop_launcher(tmp_path / "runtimes")
        await resources.llm.close()


async def test_a_dedicated_agent_drives_the_browser_of_its_runtime(
    dedicated: Runtimes,
    fake_llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    site: TestSite,
    private_service: PrivateService,
    session: AsyncSession,
    settings: Settings,
) -> None:
    r = dedicated
    site.reset()
    site.state.private_target = f"{private_service.base_url}/secret"
    stranger = await create_account(session, settings, org_name="Onlookers")
    await request_runtime_on_the_fake(r, fake_llm, monkeypatch)
    assert "ready" in await r.jobs.run_pending()

    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/login"),
        call("browser_type", element=1, text="ada"),
        call("browser_type", element=2, text="open sesame"),
        call("browser_click", element=3),
        call("browser_open", url=f"{site.base_url}/away"),  # redirects to 127.0.0.2
        ScriptedReply(content="Signed in: the balance is 42 coins."),
    )
    chat = await r.client.post(
        f"/api/v1/agents/{r.agent_id}/chat", json={"message": "Sign in as ada"}, headers=r.owner.headers
    )
    assert chat.status_code == 200, chat.text
    answer = chat.json()
    assert answer["message"]["content"] == "Signed in: the balance is 42 coins."
    # The model was asked by the runtime's process (the org's key), and the runtime's browser did the rest.
    assert fake_llm.requests[-1].headers["authorization"] == "Bearer sk-org-runtime"
    assert site.state.received == [("/login", {"username": "ada", "password": "open sesame"})]
    results = tool_results(fake_llm)
    assert "Welcome, ada" in results[3] and "42 coins" in results[3]
    assert "refused: 127.0.0.2 is a loopback address" in results[4]
    assert private_service.hits == []
    assert r.resources.browsers.open_sessions == 0  # the platform's own browsers did nothing
    system = str(fake_llm.requests[-1].body["messages"][0]["content"])
    assert "dedicated runtime" in system

    # The platform stored each screen as it stores a shared agent's, named on the message's tool calls.
    listed = await r.client.get(
        f"/api/v1/agents/{r.agent_id}/conversations/{answer['conversation_id']}/messages",
        headers=r.owner.headers,
    )
    calls = listed.json()["items"][-1]["tool_calls"]
    assert [c["name"] for c in calls] == [
        "browser_open",
        "browser_type",
        "browser_type",
        "browser_click",
        "browser_open",
    ]
    assert calls[1]["arguments"] == {"element": 1, "text": "ada"} and "Welcome, ada" in calls[3]["result"]
    urls = [c["screenshot_url"] for c in calls]
    assert len(set(urls)) == 5
    image = await r.client.get(urls[3], headers=r.owner.headers)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff" and len(image.content) > 2000
    assert (await r.client.get(urls[3], headers=stranger.headers)).status_code == 404
    shots = (await session.scalars(select(Screenshot).where(Screenshot.agent_id == r.agent_id))).all()
    assert {(s.org_id, s.conversation_id) for s in shots} == {(r.owner.org.id, answer["conversation_id"])}
    assert sorted(s.action for s in shots) == ["click", "open", "open", "type", "type"]
    stored = r.resources.settings.resolved_data_dir / "screenshots" / shots[0].storage_key
    assert stored.read_bytes()[:3] == b"\xff\xd8\xff"

    # A task of the agent: its steps run on the runtime in one browser, each step lists its screens.
    fake_llm.script(
        ScriptedReply(content='{"steps": [{"title": "Fill in page one"}, {"title": "Fill in page two"}]}'),
        call("browser_open", url=f"{site.base_url}/apply/1"),
        call("browser_type", element=1, text="Grace Hopper"),
        call("browser_click", element=3),
        ScriptedReply(content="Page one sent."),
        call("browser_type", element=1, text="grace@example.com"),  # where step 1 left the browser
        call("browser_click", element=2),
        ScriptedReply(content="Application received."),
    )
    created = await r.client.post(
        f"/api/v1/agents/{r.agent_id}/tasks",
        json={"description": "Apply as Grace Hopper"},
        headers=r.owner.headers,
    )
    await r.jobs.run_pending()
    task: dict[str, Any] = (
        await r.client.get(f"/api/v1/tasks/{created.json()['id']}", headers=r.owner.headers)
    ).json()
    assert task["status"] == "completed", task
    assert site.state.received[1:] == [
        ("/apply/1", {"name": "Grace Hopper", "plan": "basic"}),
        ("/apply/2", {"email": "grace@example.com"}),
    ]
    assert [len(s["screenshots"]) for s in task["steps"]] == [3, 2]
    live = await r.client.get(f"/api/v1/tasks/{task['id']}/live", headers=r.owner.headers)
    assert sse(live.text)[0][1]["url"] == task["steps"][1]["screenshots"][-1]
    # The task ended, and its browser on the runtime with it (closing it again finds none open).
    target = await ready_runtime(session, r.resources.secret_box, r.agent_id)
    assert target is not None and await close_task_browser(target, task["id"]) is False

    await r.client.delete(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()


LIMITED_BROWSER = """
import asyncio, sys
from playwright.async_api import async_playwright
from hutch.browser.pool import CHROMIUM_ARGS
from hutch.runtimes.launcher import apply_limits

apply_limits(None, 1024)  # a plan's runtime_memory_mb, as the process driver's launcher applies it

async def main() -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=sys.argv[1], args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.set_content("<p>Within the limit</p>")
        print(await page.inner_text("p"))
        await browser.close()

asyncio.run(main())
"""


def test_a_runtimes_memory_limit_leaves_its_browser_room(settings: Settings) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", LIMITED_BROWSER, str(settings.browser_executable)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.stdout.strip() == "Within the limit", ran.stderr[-2000:]
