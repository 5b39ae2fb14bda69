"""One Chromium for the package (the pool agents use), the sites it visits, and helpers to script the
fake model's browser calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from httpx import AsyncClient

from hutch.browser.pool import BrowserPool
from hutch.resources import Resources
from hutch.settings import Settings
from tests.browser.site import PrivateService, TestSite
from tests.factories import Account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture(scope="package")
def site() -> Iterator[TestSite]:
    server = TestSite()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def private_service() -> Iterator[PrivateService]:
    server = PrivateService()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
async def pool(
    settings: Settings, site: TestSite, private_service: PrivateService
) -> AsyncIterator[BrowserPool]:
    """The browsers of every test here: the test sites listen on 127.0.0.1, which the operator
    allows (HUTCH_EGRESS_ALLOW); every other private address stays refused. Closed before the sites."""
    browsers = BrowserPool(
        settings.model_copy(update={"egress_allow": ["127.0.0.1"], "browser_pool_size": 6})
    )
    yield browsers
    await browsers.close()


@pytest.fixture
def browsing(resources: Resources, pool: BrowserPool, site: TestSite, fake_llm: FakeLLMServer) -> BrowserPool:
    """The deployment's agents use the module's browsers."""
    resources.browsers = pool
    site.reset()
    return pool


_calls = 0


def call(name: str, **arguments: Any) -> ScriptedReply:
    """The model's answer calling one browser tool."""
    global _calls
    _calls += 1
    function = {"name": name, "arguments": json.dumps(arguments)}
    return ScriptedReply(tool_calls=[{"id": f"call_{_calls}", "type": "function", "function": function}])


async def new_agent(client: AsyncClient, owner: Account, tools: list[str] | None = None) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/agents",
        json={"name": "Clerk", "model": "openai/gpt-4o", "tools": tools or ["browser"]},
        headers=owner.headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def chat(
    client: AsyncClient, owner: Account, agent: dict[str, Any], text: str, conversation_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": text}
    if conversation_id:
        body["conversation_id"] = conversation_id
    answer = await client.post(f"/api/v1/agents/{agent['id']}/chat", json=body, headers=owner.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def tool_results(fake_llm: FakeLLMServer) -> list[str]:
    """What the model was given back from its tool calls, in order (from its last request)."""
    sent = fake_llm.requests[-1].body["messages"]
    return [str(m["content"]) for m in sent if m.get("role") == "tool"]
