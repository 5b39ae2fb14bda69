"""What the platform takes from a runtime's answer (``hutch.runtimes.wire``): screens are stored under the
turn's own org, agent and task whatever the runtime says, only screens stored for this turn are named on
its tool calls, and an answer out of bounds (screens not asked for, an image that is not a JPEG or too
large) is an apology that stores nothing. A runtime refuses a malformed extension and offers no browser
the plan does not allow."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hutch.browser.agent_browser import AgentBrowser, BrowserScope, StoredScreenshots
from hutch.browser.models import Screenshot
from hutch.core.ids import new_id
from hutch.resources import Resources
from hutch.runtimes.client import RuntimeTarget, complete
from hutch.runtimes.server import create_runtime_app
from hutch.runtimes.wire import MAX_SCREENSHOT_BYTES
from hutch.settings import Settings
from tests.conftest import asgi_client
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.server import BackgroundServer
from tests.runtimes.test_runtime_server import TOKEN, bearer, runtime_config

JPEG = b"\xff\xd8\xff\xe0" + b"screen" * 100


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def screen(shot_id: str, image: bytes = JPEG, **extra: Any) -> str:
    data = {"id": shot_id, "tool_call_id": "call_1", "action": "open", "page_url": "https://example.org/"}
    return event("hutch.screenshot", {**data, **extra, "image": base64.b64encode(image).decode()})


class ScriptedRuntime(BackgroundServer):
    """A runtime whose answer is set by the test; what the platform sent it is kept."""

    def __init__(self) -> None:
        self.answer = ""
        self.received: list[dict[str, Any]] = []
        super().__init__(Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])]))

    async def _chat(self, request: Request) -> Response:
        self.received.append(await request.json())
        return Response(self.answer, media_type="text/event-stream")


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedRuntime]:
    server = ScriptedRuntime()
    server.start()
    yield server
    server.stop()


async def test_screens_are_stored_for_the_turn_and_only_those_are_named(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    resources: Resources,
    scripted: ScriptedRuntime,
) -> None:
    owner = await create_account(session, settings, org_name="Owners")
    other = await create_account(session, settings, org_name="Others")
    agent = (await client.post("/api/v1/agents", json={"name": "Clerk"}, headers=owner.headers)).json()
    theirs = (await client.post("/api/v1/agents", json={"name": "Clerk"}, headers=other.headers)).json()
    foreign = Screenshot(
        id=new_id("shot"),
        org_id=other.org.id,
        agent_id=theirs["id"],
        action="open",
        page_url="https://example.org/",
        storage_key=f"{other.org.id}/x.jpg",
        content_type="image/jpeg",
        size_bytes=3,
        created_at=datetime.now(UTC),
    )
    session.add(foreign)
    await session.commit()
    keeper = StoredScreenshots(resources.screenshots, resources.database, None)
    scope = BrowserScope(org_id=owner.org.id, agent_id=agent["id"], reference="turn_1")
    target = RuntimeTarget(scripted.base_url, TOKEN)

    def browser() -> AgentBrowser:
        return AgentBrowser(resources.browsers, keeper, scope, 2, 1024 * 1024)

    scripted.answer = (
        ": working\n\n"
        + screen("shot_runtime1", org_id=other.org.id, agent_id=theirs["id"])  # not the runtime's to say
        + event("hutch.download", {"filename": "report.txt", "content_type": "text/plain", "data": "aGk="})
        + event(
            "hutch.outcome",
            {
                "ok": True,
                "text": "Done.",
                "model": "openai/gpt-4o-mini",
                "input_tokens": 12,
                "output_tokens": 3,
                "tool_calls": [
                    {
                        "name": "browser_open",
                        "args": {"url": "https://example.org/"},
                        "result": "Page: Example",
                        "screenshot": "shot_runtime1",
                        "metered": True,
                        "secret": "dropped",
                    },
                    {"name": "browser_read", "args": {}, "result": "Page", "screenshot": foreign.id},
                ],
                "metered_tool_calls": 2,
            },
        )
        + "data: [DONE]\n\n"
    )
    turn_browser = browser()
    outcome = await complete(
        target,
        resources.catalog,
        [{"role": "user", "content": "Go"}],
        None,
        "clerk",
        browser=turn_browser,
        tool_calls=(5, 100),
    )
    assert outcome.ok and outcome.text == "Done." and outcome.input_tokens == 12
    sent = scripted.received[-1]["hutch"]
    assert sent == {
        "browser": {"at_once": 2, "reference": "turn_1"},
        "tool_calls_left": 5,
        "tool_calls_limit": 100,
    }
    first, second = outcome.tool_calls
    assert "secret" not in first and outcome.metered_tool_calls == 1
    stored = await session.get(Screenshot, first["screenshot"], populate_existing=True)
    assert stored is not None and (stored.org_id, stored.agent_id) == (owner.org.id, agent["id"])
    assert stored.storage_key.startswith(f"{owner.org.id}/")
    assert await resources.screenshots.get(stored.storage_key) == JPEG
    assert "screenshot" not in second  # another org's screenshot is never named
    assert [(f.filename, f.data) for f in turn_browser.downloads] == [("report.txt", b"hi")]

    count = select(func.count()).select_from(Screenshot).where(Screenshot.agent_id == agent["id"])
    before = await session.scalar(count) or 0
    outcome_event = event("hutch.outcome", {"ok": True, "text": "Done.", "tool_calls": []})
    for answer, with_browser in (
        (screen("shot_runtime2") + outcome_event, False),  # screens the plan did not allow
        (screen("shot_runtime3", image=b"GIF89a not a jpeg") + outcome_event, True),
        (screen("shot_runtime4", image=JPEG + b"x" * MAX_SCREENSHOT_BYTES) + outcome_event, True),
        (screen("shot_runtime5"), True),  # no outcome: the answer broke off
    ):
        scripted.answer = answer
        refused = await complete(
            target,
            resources.catalog,
            [{"role": "user", "content": "Go"}],
            None,
            "clerk",
            browser=browser() if with_browser else None,
        )
        assert not refused.ok and refused.error and refused.error.startswith("dedicated runtime:")
    assert await session.scalar(count) == before + 1  # the last one's screen was kept as it came


async def test_a_runtime_refuses_a_bad_extension_and_offers_no_browser_the_plan_leaves_out(
    settings: Settings, tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    config = runtime_config(fake_llm.api_base, tools=["browser", "current_time"])
    app = create_runtime_app(config, tmp_path / "workspace", settings)
    async with asgi_client(app) as runtime:
        body: dict[str, Any] = {"model": "jarvis", "messages": [{"role": "user", "content": "hi"}]}
        bad = await runtime.post(
            "/v1/chat/completions", json={**body, "hutch": {"browser": {"task_id": "../x"}}}, headers=bearer()
        )
        assert bad.status_code == 400 and fake_llm.requests == []

        fake_llm.script(ScriptedReply(content="Hello."))
        answer = await runtime.post("/v1/chat/completions", json={**body, "hutch": {}}, headers=bearer())
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        [outcome] = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: {")]
        assert outcome["ok"] and outcome["text"] == "Hello."
        offered = json.dumps(fake_llm.requests[-1].body.get("tools"))
        assert "current_time" in offered and "browser_open" not in offered
