"""A key's monthly budget: answers are charged to it until it is spent (bursts of calls:
tests/billing/test_spend_holds.py)."""

from __future__ import annotations

from sqlalchemy import select

from hutch.apikeys.models import ApiKeySpend
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


async def test_answers_are_charged_to_the_key_budget_until_it_is_spent(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    agent = await live.client.post(
        "/api/v1/agents",
        json={"name": "Budgeted", "model": "openai/gpt-4o", "tools": []},
        headers=owner.headers,
    )
    created = await live.client.post(
        "/api/v1/api-keys", json={"label": "capped", "monthly_budget_cents": 60}, headers=owner.headers
    )
    key = {"X-API-Key": created.json()["key"]}
    # GPT-4o input costs $2.50 per million tokens: 200,000 tokens are 50 cents.
    fake_llm.script(ScriptedReply(content="Fifty cents.", prompt_tokens=200_000, completion_tokens=1))
    first = await live.client.post(
        f"/api/v1/agents/{agent.json()['id']}/chat", json={"message": "hi"}, headers=key
    )
    assert first.status_code == 200, first.text
    fake_llm.script(ScriptedReply(content="Another fifty.", prompt_tokens=200_000, completion_tokens=1))
    second = await live.client.post(
        f"/api/v1/agents/{agent.json()['id']}/chat", json={"message": "hi"}, headers=key
    )
    assert second.status_code == 200  # 51 of 60 spent before it: still allowed
    third = await live.client.post(
        f"/api/v1/agents/{agent.json()['id']}/chat", json={"message": "hi"}, headers=key
    )
    assert third.status_code == 402 and "monthly budget" in third.json()["detail"]
    spent = await live.session.scalar(
        select(ApiKeySpend.spent_cents).where(ApiKeySpend.api_key_id == created.json()["id"])
    )
    assert spent == 102  # 51 + 51: each answer's cost rounded up to whole cents
