"""Spend holds: the caps on money hold while many calls are in flight.

An API key's monthly budget and a pay-per-use org's credits are charged when an answer is metered, seconds
after the call was admitted. Checking the cap only at admission lets every call admitted before the first
answers are metered run: a burst of a thousand calls spent several times a $5 budget. So each admitted
turn holds its largest likely cost (``hutch.turns.spend``) against both caps in phase 1's
transaction, and phase 3 deletes the hold in the transaction that records what the answer really cost. A
call is admitted while the spend plus what calls in flight hold stays under the cap, so the cap is passed by
at most one call's largest cost. Holds of one key (one org) are taken one at a time: each locks the row
the metering of answers locks too. A hold whose turn never finished (its process died) stops counting
when it expires, and a periodic job deletes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.budget import BudgetExhausted, month_of
from hutch.billing.holds_repository import HoldRepository
from hutch.billing.models import SpendHold
from hutch.billing.quotas import MICRO_USD_PER_CENT, NoCreditsLeft
from hutch.core.errors import RateLimited
from hutch.db.carried import Carried

HOLD_TTL = timedelta(minutes=15)  # longer than any turn's model calls, tool loop included
RETRY_SECONDS = 2  # calls in flight answer within seconds, and give back what they did not spend


class BudgetHeld(RateLimited):
    def __init__(self) -> None:
        super().__init__(
            RETRY_SECONDS,
            "What is left of this API key's monthly budget is held by its calls still running; "
            "retry in a few seconds.",
        )


class CreditsHeld(RateLimited):
    def __init__(self) -> None:
        super().__init__(
            RETRY_SECONDS,
            "What is left of the organisation's credits is held by its calls still running; retry in a few "
            "seconds, or buy credits (POST /api/v1/billing/purchase).",
        )


def cents(micro_usd: int) -> int:
    return -(-micro_usd // MICRO_USD_PER_CENT)


class SpendHolds:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = HoldRepository(session)

    async def check(self, org_id: str, now: datetime, *, key: tuple[str, int] | None, credits: bool) -> None:
        """Refuse a call the caps leave no room for, as :meth:`take` would, from a read without locks: a
        burst's calls past the cap are refused before they write anything or wait for a lock."""
        if key is None and not credits:
            return
        room = await self.repository.room(org_id, key[0] if key else None, month_of(now), now)
        _refuse(
            key[1] - int(room.spent or 0) if key is not None else None,
            int(room.credits or 0) if credits else None,
            int(room.key_held),
            int(room.credits_held),
        )

    async def take(
        self,
        reference: str,
        org_id: str,
        amount_cents: int,
        now: datetime,
        *,
        key: tuple[str, int] | None,
        credits: bool,
    ) -> bool:
        """Hold ``amount_cents`` for the turn ``reference`` against ``key`` (the paying key's id and monthly
        budget; None: no budget pays) and, with ``credits``, the org's credits, in the caller's transaction.
        Refused with 402 when a cap is reached, 429 when what is left of it is held by calls in flight.
        False when nothing was held."""
        if amount_cents <= 0 or (key is None and not credits):
            return False
        await self._room(org_id, now, key=key, credits=credits)
        self.repository.add(
            SpendHold(
                reference=reference,
                org_id=org_id,
                api_key_id=key[0] if key is not None else None,
                key_cents=amount_cents if key is not None else 0,
                credit_cents=amount_cents if credits else 0,
                expires_at=now + HOLD_TTL,
            )
        )
        return True

    async def extend(
        self,
        reference: str,
        org_id: str,
        amount_cents: int,
        now: datetime,
        *,
        key: tuple[str, int] | None,
        credits: bool,
    ) -> None:
        """Add ``amount_cents`` to the hold ``reference`` (one more model request of its turn's tool loop),
        refused as :meth:`take` is: its own hold counts among those in flight."""
        await self._room(org_id, now, key=key, credits=credits)
        await self.repository.extend(
            reference,
            amount_cents if key is not None else 0,
            amount_cents if credits else 0,
            now + HOLD_TTL,
        )

    async def _room(self, org_id: str, now: datetime, *, key: tuple[str, int] | None, credits: bool) -> None:
        """Lock the key's spend and the org's credits (until the transaction ends), then refuse when what is
        left is reached or held."""
        key_room = credit_room = None
        if key is not None:
            key_room = key[1] - await self.repository.lock_key_spend(key[0], month_of(now))
        if credits:
            credit_room = await self.repository.lock_credits(org_id)
        _refuse(key_room, credit_room, *await self.repository.held(org_id, key[0] if key else None, now))

    @staticmethod
    def released(reference: str) -> Carried:
        """The hold's deletion, carried by the statement that meters the answer (one transaction)."""
        return HoldRepository.released(reference)

    async def release(self, reference: str) -> None:
        await self.repository.release(reference)

    async def purge_expired(self, now: datetime) -> int:
        return await self.repository.purge_expired(now)


def _refuse(key_room: int | None, credit_room: int | None, key_held: int, credits_held: int) -> None:
    """402 when a cap (None: not in play) has no room left, 429 when calls in flight hold what is left."""
    if key_room is not None and key_room <= 0:
        raise BudgetExhausted()
    if credit_room is not None and credit_room <= 0:
        raise NoCreditsLeft()
    if key_room is not None and key_held >= key_room:
        raise BudgetHeld()
    if credit_room is not None and credits_held >= credit_room:
        raise CreditsHeld()
