"""Every query on screenshots and browser leases; org filtering lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import BrowserLease, Screenshot
from hutch.core.principal import Principal


class ScreenshotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, screenshot: Screenshot) -> None:
        self.session.add(screenshot)

    async def readable(self, principal: Principal, screenshot_id: str) -> Screenshot | None:
        """The screenshot when it belongs to the caller's org (and, for a key limited to some agents, to
        one of them)."""
        stmt = select(Screenshot).where(Screenshot.id == screenshot_id, Screenshot.org_id == principal.org_id)
        if principal.agent_ids is not None:
            stmt = stmt.where(Screenshot.agent_id.in_(principal.agent_ids))
        found: Screenshot | None = await self.session.scalar(stmt)
        return found

    async def of_task(self, org_id: str, task_id: str) -> Sequence[Screenshot]:
        """The task's screenshots, oldest first."""
        return (
            await self.session.scalars(
                select(Screenshot)
                .where(Screenshot.org_id == org_id, Screenshot.task_id == task_id)
                .order_by(Screenshot.created_at, Screenshot.id)
            )
        ).all()

    async def latest_of_task(self, org_id: str, task_id: str) -> Screenshot | None:
        found: Screenshot | None = await self.session.scalar(
            select(Screenshot)
            .where(Screenshot.org_id == org_id, Screenshot.task_id == task_id)
            .order_by(Screenshot.created_at.desc(), Screenshot.id.desc())
            .limit(1)
        )
        return found

    async def keys_of_agent(self, org_id: str, agent_id: str) -> list[str]:
        """Where the agent's screenshot images are kept (its rows go with the agent by cascade)."""
        return list(
            (
                await self.session.scalars(
                    select(Screenshot.storage_key).where(
                        Screenshot.org_id == org_id, Screenshot.agent_id == agent_id
                    )
                )
            ).all()
        )


# One org's leases are taken one at a time: each counts the others under this lock (held to the commit).
_LOCK_ORG = text("SELECT pg_advisory_xact_lock(hashtext('browser-leases:' || :org_id))")
_RENEW = text(
    "INSERT INTO browser_leases (session_key, org_id, expires_at) VALUES (:key, :org_id, :until) "
    "ON CONFLICT (session_key) DO UPDATE SET expires_at = EXCLUDED.expires_at "
    "WHERE browser_leases.org_id = EXCLUDED.org_id"
)


class LeaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take(self, key: str, org_id: str, at_once: int, now: datetime, until: datetime) -> bool:
        """Lease (or renew) the session ``key`` for ``org_id`` until ``until``, unless the org has ``at_once``
        other unexpired leases; whether it was leased."""
        await self.session.execute(_LOCK_ORG, {"org_id": org_id})
        # The org's lapsed leases go here, under its lock: no sweep is needed.
        await self.session.execute(
            delete(BrowserLease).where(BrowserLease.org_id == org_id, BrowserLease.expires_at <= now)
        )
        others = await self.session.scalar(
            select(func.count())
            .select_from(BrowserLease)
            .where(
                BrowserLease.org_id == org_id,
                BrowserLease.session_key != key,
            )
        )
        if int(others or 0) >= at_once:
            return False
        await self.session.execute(_RENEW, {"key": key, "org_id": org_id, "until": until})
        return True

    async def release(self, key: str) -> None:
        await self.session.execute(delete(BrowserLease).where(BrowserLease.session_key == key))
