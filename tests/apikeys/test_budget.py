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
