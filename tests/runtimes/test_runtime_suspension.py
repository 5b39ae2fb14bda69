"""A suspended organisation's dedicated runtimes stop at once (workspace kept) and start again when it is
reinstated; the health job keeps them stopped meanwhile."""

from __future__ import annotations

import httpx
import pytest

from hutch.runtimes.jobs import HEALTH_JOB
from hutch.runtimes.models import RuntimeStatus
from tests.factories import create_account
from tests.runtimes.test_runtimes import Runtimes, runtimes  # noqa: F401 - the fixture


async def test_suspending_an_org_stops_its_runtimes_and_reinstating_restores_them(
    runtimes: Runtimes,  # noqa: F811
) -> None:
    r = runtimes
    await r.client.post(r.url, headers=r.owner.headers)
    assert "ready" in await r.jobs.run_pending()
    endpoint = (await r.row()).endpoint
    assert endpoint is not None
    workspace = r.resources.settings.data_dir / "runtimes" / r.agent_id / "workspace"
    (workspace / "IDENTITY.md").write_text("I am Jarvis.")
    admin = await create_account(r.session, r.resources.settings, platform_admin=True)

    suspended = await r.client.post(
        f"/api/v1/admin/orgs/{r.owner.org.id}/suspend", json={"reason": "Fraud check"}, headers=admin.headers
    )
    assert suspended.status_code == 200
    assert await r.jobs.run_pending() == [{"stopped": 1}]
    row = await r.row()
    assert row.status is RuntimeStatus.STOPPED and "organisation is suspended" in (row.last_error or "")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{endpoint}/healthz", timeout=1)
    assert (await r.run(HEALTH_JOB, timestamp=0))["resumed"] == 0  # stays stopped while suspended
    assert (workspace / "IDENTITY.md").read_text() == "I am Jarvis."

    reinstated = await r.client.post(f"/api/v1/admin/orgs/{r.owner.org.id}/reinstate", headers=admin.headers)
    assert reinstated.status_code == 200
    assert await r.jobs.run_pending() == [{"restored": 1}, "ready"]
    assert (await r.row()).status is RuntimeStatus.READY
    assert httpx.get(f"{(await r.row()).endpoint}/healthz", timeout=5).status_code == 200
    assert (workspace / "IDENTITY.md").read_text() == "I am Jarvis."

    await r.client.delete(r.url, headers=r.owner.headers)
    await r.jobs.run_pending()
