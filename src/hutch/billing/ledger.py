"""The prepaid ledger: credits (cents) and time (seconds) per org, append-only, never below zero.

Every entry moves the org's ``balances`` row with one conditional update in the caller's transaction: the
row lock serialises concurrent entries, and a spend that would go below zero changes nothing and raises
402. So the balance always equals the sum of the entries, with any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.billing.models import Balance, LedgerEntry, LedgerKind, LedgerUnit
from hutch.core.errors import PaymentRequired
from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork

LOW_BALANCE_JOB = "billing.notify_low_balance"

_ENSURE = text("INSERT INTO balances (org_id) VALUES (:org_id) ON CONFLICT (org_id) DO NOTHING")
_MOVE = text(
    "UPDATE balances SET credits_cents = credits_cents + :credits, seconds = seconds + :seconds, "
    "updated_at = now() "
    "WHERE org_id = :org_id AND credits_cents + :credits >= 0 AND seconds + :seconds >= 0 "
    "RETURNING credits_cents, seconds, low_credits_notified"
)


class InsufficientBalance(PaymentRequired):
    def __init__(self, unit: LedgerUnit) -> None:
        what = "credits" if unit is LedgerUnit.CREDITS else "time"
        super().__init__(f"Not enough prepaid {what} left; buy a package (POST /api/v1/billing/purchase).")
        self.unit = unit


@dataclass(frozen=True)
class BalanceView:
    credits_cents: int
    seconds: int


class Ledger:
    def __init__(self, uow: UnitOfWork, *, low_balance_threshold_cents: int = 0) -> None:
        self.uow = uow
        self.session: AsyncSession = uow.session
        self.threshold = low_balance_threshold_cents

    async def post(
        self,
        org_id: str,
        unit: LedgerUnit,
        kind: LedgerKind,
        amount: int,
        *,
        description: str = "",
        reference: str | None = None,
        actor_user_id: str | None = None,
    ) -> LedgerEntry:
        """Add an entry (negative ``amount`` spends). With a ``reference`` already posted, nothing happens
        and the first entry is returned: replays of the same purchase or charge count once."""
        if reference is not None:
            existing = await self.by_reference(reference)
            if existing is not None:
                return existing
        credits, seconds = (amount, 0) if unit is LedgerUnit.CREDITS else (0, amount)
        await self.ensure_balance(org_id)
        row = (
            await self.session.execute(_MOVE, {"org_id": org_id, "credits": credits, "seconds": seconds})
        ).first()
        if row is None:
            raise InsufficientBalance(unit)
        balance_after = int(row.credits_cents if unit is LedgerUnit.CREDITS else row.seconds)
        entry = LedgerEntry(
            id=new_id("led"),
            org_id=org_id,
            unit=unit,
            kind=kind,
            amount=amount,
            balance_after=balance_after,
            description=description[:500],
            reference=reference,
            actor_user_id=actor_user_id,
        )
        self.session.add(entry)
        await self.session.flush()
        if unit is LedgerUnit.CREDITS:
            await self._watch_threshold(org_id, balance_after, bool(row.low_credits_notified))
        return entry

    async def _watch_threshold(self, org_id: str, credits: int, notified: bool) -> None:
        """Tell the owners once each time credits fall below the threshold; rearm when they rise above."""
        if self.threshold <= 0:
            return
        below = credits < self.threshold
        if below == notified:
            return
        await self.session.execute(
            text("UPDATE balances SET low_credits_notified = :below WHERE org_id = :org_id"),
            {"below": below, "org_id": org_id},
        )
        if below:
            self.uow.defer(LOW_BALANCE_JOB, org_id=org_id, credits_cents=credits)

    async def ensure_balance(self, org_id: str) -> None:
        await self.session.execute(_ENSURE, {"org_id": org_id})

    async def by_reference(self, reference: str) -> LedgerEntry | None:
        return (
            await self.session.execute(select(LedgerEntry).where(LedgerEntry.reference == reference))
        ).scalar_one_or_none()

    async def balance(self, org_id: str) -> BalanceView:
        row = await self.session.get(Balance, org_id, populate_existing=True)
        return BalanceView(row.credits_cents, row.seconds) if row else BalanceView(0, 0)

    async def entries(self, org_id: str, skip: int, limit: int) -> tuple[list[LedgerEntry], int]:
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.org_id == org_id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .offset(skip)
            .limit(limit)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.org_id == org_id)
        )
        return list((await self.session.scalars(stmt)).all()), int(total or 0)

    async def sums(self, org_id: str) -> BalanceView:
        """The entries added up (what the balance must equal)."""
        rows = await self.session.execute(
            select(LedgerEntry.unit, func.coalesce(func.sum(LedgerEntry.amount), 0))
            .where(LedgerEntry.org_id == org_id)
            .group_by(LedgerEntry.unit)
        )
        totals = {unit: int(total) for unit, total in rows.all()}
        return BalanceView(totals.get(LedgerUnit.CREDITS, 0), totals.get(LedgerUnit.SECONDS, 0))
