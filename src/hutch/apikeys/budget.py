"""Monthly credit budgets of API keys, reserved atomically so they hold across processes and machines.

Each reservation is one conditional upsert on its own autocommit connection: concurrent requests never
overspend, and a long model call does not hold a row lock inside the request's transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from hutch.apikeys.repository import ApiKeySpendRepository
from hutch.core.errors import PaymentRequired


class BudgetExhausted(PaymentRequired):
    def __init__(self) -> None:
        super().__init__(
            "This API key has spent its monthly budget; raise the budget or wait for next month."
        )


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


class ApiKeyBudget:
    def __init__(self, engine: AsyncEngine) -> None:
        self._spend = ApiKeySpendRepository(engine)

    async def reserve(self, key_id: str, amount_cents: int, budget_cents: int) -> int:
        """Reserve ``amount_cents`` of this month's budget; the month's spend after it, or 402."""
        spent = await self._spend.reserve(key_id, month_of(datetime.now(UTC)), amount_cents, budget_cents)
        if spent is None:
            raise BudgetExhausted()
        return int(spent)

    async def adjust(self, key_id: str, delta_cents: int) -> None:
        """Settle a reservation with the real cost (positive or negative delta; never below zero)."""
        await self._spend.adjust(key_id, month_of(datetime.now(UTC)), delta_cents)


def spend_change(key_id: str, delta_cents: int, now: datetime) -> dict[str, object]:
    """The parameters of :func:`~hutch.apikeys.repository.adjust_spend_sql`."""
    return {"key_id": key_id, "month": month_of(now), "delta": delta_cents}
