"""Monthly credit budgets of API keys: a key's answers add to its spend of the month (UTC) as they are
metered, and calls in flight hold what they may cost (``hutch.billing.holds``), so the budget holds across
processes and machines.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from hutch.core.errors import PaymentRequired


class BudgetExhausted(PaymentRequired):
    def __init__(self) -> None:
        super().__init__(
            "This API key has spent its monthly budget; raise the budget or wait for next month."
        )


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def spend_change(key_id: str, delta_cents: int, now: datetime) -> dict[str, object]:
    """The parameters of :func:`~hutch.apikeys.repository.adjust_spend_sql`."""
    return {"key_id": key_id, "month": month_of(now), "delta": delta_cents}
