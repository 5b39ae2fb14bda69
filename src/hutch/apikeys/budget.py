"""Monthly credit budgets of API keys, reserved atomically so they hold across processes and machines.

Each reservation is one conditional upsert on its own autocommit connection: concurrent requests never
overspend, and a long model call does not hold a row lock inside the request's transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hutch.core.errors import PaymentRequired

_RESERVE = text(
    "INSERT INTO api_key_spend (api_key_id, month, spent_cents) "
    "SELECT :key_id, :month, CAST(:amount AS bigint) "
    "WHERE CAST(:amount AS bigint) <= CAST(:budget AS bigint) "
    "ON CONFLICT (api_key_id, month) DO UPDATE "
    "SET spent_cents = api_key_spend.spent_cents + EXCLUDED.spent_cents "
    "WHERE api_key_spend.spent_cents + EXCLUDED.spent_cents <= CAST(:budget AS bigint) "
    "RETURNING spent_cents"
)


def adjust_spend_sql(after: str | None = None) -> str:
    """Adds ``:delta`` cents (never below zero in total) to key ``:key_id``'s spend in ``:month``.

    ``after`` names a CTE of the same statement whose row comes first: reading it makes PostgreSQL write that
    row (and take its lock) before this one, so statements that carry both lock them in one order."""
    source = f" FROM {after}" if after else ""
    return (
        "INSERT INTO api_key_spend (api_key_id, month, spent_cents) "
        f"SELECT :key_id, :month, GREATEST(CAST(:delta AS bigint), 0){source} "
        "ON CONFLICT (api_key_id, month) DO UPDATE "
        "SET spent_cents = GREATEST(api_key_spend.spent_cents + CAST(:delta AS bigint), 0)"
    )


_ADJUST = text(adjust_spend_sql())


class BudgetExhausted(PaymentRequired):
    def __init__(self) -> None:
        super().__init__(
            "This API key has spent its monthly budget; raise the budget or wait for next month."
        )


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


class ApiKeyBudget:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def reserve(self, key_id: str, amount_cents: int, budget_cents: int) -> int:
        """Reserve ``amount_cents`` of this month's budget; the month's spend after it, or 402."""
        params = {
            "key_id": key_id,
            "month": month_of(datetime.now(UTC)),
            "amount": amount_cents,
            "budget": budget_cents,
        }
        async with self._engine.connect() as conn:
            spent = (await conn.execute(_RESERVE, params)).scalar_one_or_none()
        if spent is None:
            raise BudgetExhausted()
        return int(spent)

    async def adjust(self, key_id: str, delta_cents: int) -> None:
        """Settle a reservation with the real cost (positive or negative delta; never below zero)."""
        async with self._engine.connect() as conn:
            await conn.execute(_ADJUST, spend_change(key_id, delta_cents, datetime.now(UTC)))


def spend_change(key_id: str, delta_cents: int, now: datetime) -> dict[str, object]:
    """The parameters of :func:`adjust_spend_sql`."""
    return {"key_id": key_id, "month": month_of(now), "delta": delta_cents}
