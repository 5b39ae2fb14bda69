"""Screenshots for the people who own them: the image behind a screenshot URL, and a task's screenshots
by step (for the task's page, its API answer and its live view)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
from hutch.browser.repository import ScreenshotRepository
from hutch.browser.screenshots import ScreenshotStore
from hutch.core.errors import NotFound
from hutch.core.principal import Principal

SCREENSHOT_PATH = "/api/v1/screenshots/{id}"


def screenshot_url(screenshot_id: str) -> str:
    return SCREENSHOT_PATH.format(id=screenshot_id)


@dataclass(frozen=True)
class ScreenshotImage:
    data: bytes
    content_type: str


class Screenshots:
    def __init__(self, session: AsyncSession, store: ScreenshotStore) -> None:
        self.repository = ScreenshotRepository(session)
        self.store = store

    async def image(self, principal: Principal, screenshot_id: str) -> ScreenshotImage:
        """The image, for members of the org whose agent took it; anyone else gets 404."""
        shot = await self.repository.readable(principal, screenshot_id)
        # A key outside the org's own prefix is no image of this org's, whatever the store holds there.
        if shot is None or not shot.storage_key.startswith(f"{shot.org_id}/"):
            raise NotFound("Screenshot")
        data = await self.store.get(shot.storage_key)
        if data is None:
            raise NotFound("Screenshot")
        return ScreenshotImage(data, shot.content_type)

    async def by_step(self, org_id: str, task_id: str) -> dict[int, list[str]]:
        """The task's screenshot ids by step number (from 1), oldest first."""
        steps: dict[int, list[str]] = defaultdict(list)
        for shot in await self.repository.of_task(org_id, task_id):
            steps[shot.step or 0].append(shot.id)
        return dict(steps)

    async def latest_of_task(self, org_id: str, task_id: str) -> Screenshot | None:
        return await self.repository.latest_of_task(org_id, task_id)
