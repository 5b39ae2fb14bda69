"""Every query on spend holds (``hutch.billing.holds``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.billing.models import SpendHold
from hutch.db.carried import Carried

# Lock the key's spend row of the month (made when missing), which its answers' metering also locks: holds
# of one key are taken one at a time, each seeing the holds and the spend committed before it.
_LOCK_KEY_SPEND = text(
    "INSERT INTO api_key_spend (api_key_id, month, spent_cents) VALUES (:key_id, :month, 0) "
    "ON CONFLICT (api_key_id, month) DO UPDATE SET spent_cents = api_key_spend.spent_cents "
    "RETURNING spent_cents"
)
_LOCK_CREDITS = text("SELECT credits_cents FROM balances WHERE org_id = :org_id FOR UPDATE")
# Read after the locks, so the statement's snapshot holds every hold and charge committed before them.
_HELD = text(
    "SELECT "
    "(SELECT coalesce(sum(key_cents), 0) FROM spend_holds "
    " WHERE api_key_id = CAST(:key_id AS varchar) AND expires_at > :now) AS key_held, "
    "(SELECT coalesce(sum(credit_cents), 0) FROM spend_holds "
    " WHERE org_id = :org_id AND credit_cents > 0 AND expires_at > :now) AS credits_held"
)
# Without locks: what a call about to be admitted can see is left, to refuse it before it writes anything.
_ROOM = text(
    "SELECT "
    "(SELECT spent_cents FROM api_key_spend "
    " WHERE api_key_id = CAST(:key_id AS varchar) AND month = :month) AS spent, "
    "(SELECT credits_cents FROM balances WHERE org_id = :org_id) AS credits, "
    "(SELECT coalesce(sum(key_cents), 0) FROM spend_holds "
    " WHERE api_key_id = CAST(:key_id AS varchar) AND expires_at > :now) AS key_held, "
    "(SELECT coalesce(sum(credit_cents), 0) FROM spend_holds "
    " WHERE org_id = :org_id AND credit_cents > 0 AND expires_at > :now) AS credits_held"
)
_RELEASED = (
    text("DELETE FROM spend_holds WHERE reference = :hold_reference RETURNING reference")
    .columns()
    .cte("hold_released")
)


class HoldRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_key_spend(self, key_id: str, month: date) -> int:
        """The key's spend this month, its row locked until the transaction ends."""
        spent = await self.session.scalar(_LOCK_KEY_SPEND, {"key_id": key_id, "month": month})
        return int(spent or 0)

    async def lock_credits(self, org_id: str) -> int:
        """The org's credits in cents, its balance locked until the transaction ends (0 without one)."""
        credits = await self.session.scalar(_LOCK_CREDITS, {"org_id": org_id})
        return int(credits or 0)

    async def held(self, org_id: str, key_id: str | None, now: datetime) -> tuple[int, int]:
        """What the unexpired holds keep of the key's budget and of the org's credits, in cents."""
        row = (await self.session.execute(_HELD, {"org_id": org_id, "key_id": key_id, "now": now})).one()
        return int(row.key_held), int(row.credits_held)

    async def room(self, org_id: str, key_id: str | None, month: date, now: datetime) -> Any:
        """The key's spend this month, the org's credits and what holds keep of each, read without locks
        (columns ``spent``, ``credits``, ``key_held``, ``credits_held``)."""
        params = {"org_id": org_id, "key_id": key_id, "month": month, "now": now}
        return (await self.session.execute(_ROOM, params)).one()

    def add(self, hold: SpendHold) -> None:
        self.session.add(hold)

    async def extend(self, reference: str, key_cents: int, credit_cents: int, until: datetime) -> None:
        await self.session.execute(
            update(SpendHold)
            .where(SpendHold.reference == reference)
            .values(
                key_cents=SpendHold.key_cents + key_cents,
                credit_cents=SpendHold.credit_cents + credit_cents,
                expires_at=until,
            )
        )

    @staticmethod
    def released(reference: str) -> Carried:
        """The hold's deletion, for the statement that meters its turn's answer to carry."""
        return Carried((_RELEASED,), params={"hold_reference": reference})

    async def release(self, reference: str) -> None:
        await self.session.execute(delete(SpendHold).where(SpendHold.reference == reference))

    async def purge_expired(self, now: datetime) -> int:
        """Delete the holds of turns that never finished, past their expiry; how many."""
        deleted = await self.session.execute(
            delete(SpendHold).where(SpendHold.expires_at <= now).returning(SpendHold.reference)
        )
        return len(deleted.all())
