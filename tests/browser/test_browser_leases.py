"""The plan's browsers at once hold across processes: each process's pool knows only its own sessions, so
each session holds a lease in PostgreSQL (``hutch.browser.leases``)."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.agent_browser import AgentBrowser, BrowserScope, StoredScreenshots
from hutch.browser.leases import BrowserLeases
from hutch.browser.pool import PLAN_BROWSERS_BUSY, BrowserPool
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.browser.conftest import new_agent
from tests.browser.site import TestSite
from tests.factories import create_account


async def test_an_orgs_browsers_at_once_are_counted_across_processes(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    database: Database,
    resources: Resources,
    pool: BrowserPool,
    site: TestSite,
) -> None:
    owner = await create_account(session, settings)
    agent = await new_agent(client, owner)
    # Another process of the deployment (a second worker), with a pool of its own, on the same database.
    other_process = BrowserPool(settings.model_copy(update={"egress_allow": ["127.0.0.1"]}))
    keeper = StoredScreenshots(resources.screenshots, database, None)

    def browser(on: BrowserPool, turn: str, org_id: str = owner.org.id) -> AgentBrowser:
        scope = BrowserScope(org_id=org_id, agent_id=agent["id"], reference=turn)
        leases = BrowserLeases(database, settings.browser_idle_seconds)
        return AgentBrowser(on, keeper, scope, 1, 1_000_000, leases=leases)  # the plan allows one

    try:
        here = browser(pool, "first")
        assert "whoami" in (await here.act("open", None, url=f"{site.base_url}/whoami")).text.lower()

        there = browser(other_process, "second")
        refused = await there.act("open", None, url=f"{site.base_url}/whoami")
        assert refused.text == PLAN_BROWSERS_BUSY.format(at_once=1)
        assert other_process.open_sessions == 0  # refused before a browser was opened there

        await here.close()  # the first turn is over: its browser no longer counts
        opened = await there.act("open", None, url=f"{site.base_url}/whoami")
        assert opened.text != refused.text and other_process.open_sessions == 1
        await there.close()
    finally:
        await other_process.close()
