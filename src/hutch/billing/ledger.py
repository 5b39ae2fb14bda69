"""The prepaid ledger: credits (cents) and time (seconds) per org, append-only, never below zero.

Every entry moves the org's ``balances`` row with one conditional update in the caller's transaction: the
row lock serialises concurrent entries, and a spend that would go below zero changes nothing and raises
402. So the balance always equals the sum of the entries, with any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.billing.models import Balance, LedgerEntry, LedgerKind, LedgerUnit
from hutch.billing.repository import LedgerRepository
from hutch.core.errors import PaymentRequired
from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources

LOW_BALANCE_JOB = "billing.notify_low_balance"


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
        self.repository = LedgerRepository(uow.session)
        self.threshold = low_balance_threshold_cents

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Ledger:
        """The ledger for a request, a page or a job: posting through it keeps the low-credits mark true
        (a ledger without the threshold would leave the mark set after a top-up and miss the next notice)."""
        return cls(uow, low_balance_threshold_cents=resources.plans.billing.low_balance_threshold_cents)

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
        moved = await self.repository.move(org_id, credits, seconds)
        if moved is None:
            raise InsufficientBalance(unit)
        balance_after = moved.credits_cents if unit is LedgerUnit.CREDITS else moved.seconds
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
            await self._watch_threshold(org_id, balance_after, moved.low_credits_notified)
        return entry

    async def _watch_threshold(self, org_id: str, credits: int, notified: bool) -> None:
        """Tell the owners once each time credits fall below the threshold; rearm when they rise above."""
        if self.threshold <= 0:
            return
        below = credits < self.threshold
        if below == notified:
            return
        await self.repository.mark_low_credits(org_id, below)
        if below:
            self.uow.defer(LOW_BALANCE_JOB, org_id=org_id, credits_cents=credits)

    async def ensure_balance(self, org_id: str) -> None:
        await self.repository.ensure_balance(org_id)

    async def by_reference(self, reference: str) -> LedgerEntry | None:
        return await self.repository.by_reference(reference)

    async def balance(self, org_id: str) -> BalanceView:
        row = await self.session.get(Balance, org_id, populate_existing=True)
        return BalanceView(row.credits_cents, row.seconds) if row else BalanceView(0, 0)

    async def entries(self, org_id: str, skip: int, limit: int) -> tuple[list[LedgerEntry], int]:
        return await self.repository.entries(org_id, skip, limit)

    async def sums(self, org_id: str) -> BalanceView:
        """The entries added up (what the balance must equal)."""
        totals = await self.repository.sums(org_id)
        return BalanceView(totals.get(LedgerUnit.CREDITS, 0), totals.get(LedgerUnit.SECONDS, 0))
