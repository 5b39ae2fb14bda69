"""The browsers an org has open, counted across every process of the deployment against its plan's
``browsers``: each process's pool only knows its own sessions, so each session holds a lease in PostgreSQL,
renewed by each action and lapsing when the pool would close the session for being idle (``browser_leases``).
A dedicated runtime counts its own sessions (docs/browser.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hutch.browser.repository import LeaseRepository
from hutch.db.engine import Database, unit_of_work


@dataclass(frozen=True)
class BrowserLeases:
    database: Database
    idle_seconds: float  # a session unused this long is closed by its pool: its lease lapses with it

    async def take(self, key: str, org_id: str, at_once: int) -> bool:
        """Lease (or renew) the session ``key``, in a short unit of work of its own; False when the org has
        ``at_once`` other browsers open."""
        now = datetime.now(UTC)
        async with unit_of_work(self.database, None) as uow:
            taken = await LeaseRepository(uow.session).take(
                key, org_id, at_once, now, now + timedelta(seconds=self.idle_seconds)
            )
            await uow.checkpoint()
        return taken

    async def release(self, key: str) -> None:
        """The session ``key`` was closed: it no longer counts."""
        async with unit_of_work(self.database, None) as uow:
            await LeaseRepository(uow.session).release(key)
            await uow.checkpoint()
