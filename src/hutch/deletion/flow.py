"""What goes when an agent is deleted, and in which order, owned here rather than by any one domain.

The agent's row goes with its conversations, messages, memories, documents and channels by the database's
cascades; its dedicated runtime's process (or container, or machine) is destroyed, and its browser's
screenshot images removed from their store, by jobs queued in the same transaction, so a rolled-back deletion
leaves the runtime and the images alone.
"""

from __future__ import annotations

from hutch.agents.service import AgentService
from hutch.browser.repository import ScreenshotRepository
from hutch.core.principal import Principal
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.runtimes.service import RuntimeService

FORGET_SCREENSHOTS_JOB = "deletion.forget_screenshots"
SCREENSHOTS_PER_JOB = 500


async def delete_agent(
    uow: UnitOfWork, resources: WorkerResources, principal: Principal, agent_id: str
) -> None:
    """Delete one of the caller's agents; 404 when it is not theirs to see."""
    await RuntimeService.of(uow, resources).forget_agent(principal, agent_id)
    keys = await ScreenshotRepository(uow.session).keys_of_agent(principal.org_id, agent_id)
    await AgentService.of(uow, resources).delete(principal, agent_id)
    for start in range(0, len(keys), SCREENSHOTS_PER_JOB):
        uow.defer(FORGET_SCREENSHOTS_JOB, keys=keys[start : start + SCREENSHOTS_PER_JOB])
