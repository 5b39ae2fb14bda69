"""Provider trouble as users meet it: retried 429s, timeouts, garbage — then a clear apology, on record."""

from __future__ import annotations

import time

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.models import Message
from hutch.engine.gateway import LLMGateway
from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings)


def reconfigure(resources: Resources, **changes: object) -> None:
    resources.settings = resources.settings.model_copy(update=changes)
    resources.llm = LLMGateway(resources.settings, resources.catalog)


async def ask(client: AsyncClient, owner: Account, text: str) -> dict[str, object]:
    agent = await client.post(
        "/api/v1/agents", json={"name": "Retry", "model": "openai/gpt-4o", "tools": []}, headers=owner.headers
    )
    response = await client.post(
        f"/api/v1/agents/{agent.json()['id']}/chat", json={"message": text}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_rate_limited_call_is_retried_with_backoff(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, resources: Resources
) -> None:
    reconfigure(resources, llm_max_retries=2)
    fake_llm.script(ScriptedReply(status=429, error="slow down"), ScriptedReply(content="Second time lucky."))
    answer = await ask(client, owner, "hello")
    assert answer["message"]["content"] == "Second time lucky."  # type: ignore[index]
    assert len([r for r in fake_llm.requests if r.path == "/v1/chat/completions"]) == 2


async def test_a_timeout_ends_in_an_apology_not_a_hang(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, resources: Resources, session: AsyncSession
) -> None:
    reconfigure(resources, llm_timeout_seconds=0.3, llm_max_retries=0)
    fake_llm.script(ScriptedReply(content="too late", delay=3))
    started = time.monotonic()
    answer = await ask(client, owner, "anyone?")
    assert time.monotonic() - started < 2.5
    message = answer["message"]
    assert message["status"] == "failed" and "try again" in message["content"]  # type: ignore[index]
    stored = await session.get(Message, message["id"])  # type: ignore[index]
    assert stored is not None and "Timeout" in (stored.error or "")


async def test_garbage_from_the_provider_is_a_clear_failure(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, session: AsyncSession
) -> None:
    fake_llm.script(ScriptedReply(raw_body="<html>Bad gateway</html>", status=200))
    answer = await ask(client, owner, "hello?")
    assert answer["message"]["status"] == "failed"  # type: ignore[index]
    stored = await session.get(Message, answer["message"]["id"])  # type: ignore[index]
    assert stored is not None and stored.error


async def test_provider_errors_never_store_the_key(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, session: AsyncSession
) -> None:
    fake_llm.script(ScriptedReply(status=401, error="Incorrect API key provided: sk-test-platform-key"))
    answer = await ask(client, owner, "hello")
    stored = await session.get(Message, answer["message"]["id"])  # type: ignore[index]
    assert stored is not None and stored.error is not None
    assert "sk-test-platform-key" not in stored.error and "sk-test-platform-key" not in str(answer)
