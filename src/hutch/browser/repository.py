"""Every query on screenshots; org filtering lives here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
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
