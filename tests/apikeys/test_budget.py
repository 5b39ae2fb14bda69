"""A key's monthly budget holds under concurrent spending: reservations are atomic in PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from hutch.apikeys.budget import ApiKeyBudget, BudgetExhausted
from hutch.apikeys.models import ApiKeySpend
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


async def test_fifty_concurrent_reservations_never_overspend(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    created = await live.client.post(
        "/api/v1/api-keys", json={"label": "budgeted", "monthly_budget_cents": 100}, headers=owner.headers
    )
    key_id = created.json()["id"]
    budget = ApiKeyBudget(live.resources.database.engine)

    async def spend() -> bool:
        try:
            await budget.reserve(key_id, 7, 100)
        except BudgetExhausted:
            return False
        return True

    outcomes = await asyncio.gather(*(spend() for _ in range(50)))
    assert outcomes.count(True) == 14  # 14 x 7 = 98 fits in 100; a 15th would make 105
    spent = await live.session.scalar(select(ApiKeySpend.spent_cents).where(ApiKeySpend.api_key_id == key_id))
    assert spent == 98

    # Settling with the real cost frees what was over-reserved; the key then answers again.
    await budget.adjust(key_id, -10)
    assert await budget.reserve(key_id, 12, 100) == 100
    with pytest.raises(BudgetExhausted):
        await budget.reserve(key_id, 1, 100)
    exhausted = await live.client.get(
        "/api/v1/api-keys/current", headers={"X-API-Key": created.json()["key"]}
    )
    assert exhausted.status_code == 402


async def test_a_reservation_larger_than_the_budget_is_refused_and_records_nothing(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    created = await live.client.post(
        "/api/v1/api-keys", json={"label": "small", "monthly_budget_cents": 5}, headers=owner.headers
    )
    key_id = created.json()["id"]
    with pytest.raises(BudgetExhausted):
        await ApiKeyBudget(live.resources.database.engine).reserve(key_id, 6, 5)
    rows = await live.session.scalars(select(ApiKeySpend).where(ApiKeySpend.api_key_id == key_id))
    assert rows.all() == []


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
