"""Browser screenshots go with what they belong to: a deleted agent's images leave the store (its rows go by
cascade), a deleted organisation's images all go; other agents' and other orgs' stay. Files on disk and
objects in an S3-compatible bucket (moto's server) alike, and a deletion run again after a crash does not
fail on images already gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
from hutch.browser.screenshots import (
    BucketScreenshots,
    ScreenshotStore,
    build_screenshot_store,
    screenshot_key,
)
from hutch.core.ids import new_id
from hutch.deletion.models import Deletion, DeletionStatus
from hutch.resources import Resources
from hutch.settings import Settings
from tests.browser.test_screenshot_store import BUCKET, s3_endpoint  # noqa: F401 - the fixture
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.web.test_dashboard import csrf_of, log_in

JPEG = b"\xff\xd8\xff\xe0 a screen"


@pytest.fixture(params=["files", "bucket"])
def store(
    request: pytest.FixtureRequest,
    resources: Resources,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ScreenshotStore]:
    if request.param == "files":
        configured = settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("shots")})
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        configured = settings.model_copy(
            update={
                "screenshots_bucket": BUCKET,
                "screenshots_s3_endpoint_url": endpoint,
                "screenshots_s3_access_key_id": SecretStr("k"),
                "screenshots_s3_secret_access_key": SecretStr("s"),
            }
        )
    resources.screenshots = build_screenshot_store(configured)
    assert isinstance(resources.screenshots, BucketScreenshots) == (request.param == "bucket")
    yield resources.screenshots


async def shots(
    session: AsyncSession, store: ScreenshotStore, owner: Account, agent_id: str, n: int
) -> list[str]:
    """``n`` screenshots of the agent, image and row; their storage keys."""
    keys = []
    for _ in range(n):
        shot_id = new_id("shot")
        key = screenshot_key(owner.org.id, shot_id)
        await store.put(key, JPEG, "image/jpeg")
        session.add(
            Screenshot(
                id=shot_id,
                org_id=owner.org.id,
                agent_id=agent_id,
                action="open",
                page_url="https://example.org/",
                storage_key=key,
                content_type="image/jpeg",
                size_bytes=len(JPEG),
                created_at=datetime.now(UTC),
            )
        )
        keys.append(key)
    await session.commit()
    return keys


async def kept(store: ScreenshotStore, keys: list[str]) -> list[bool]:
    return [await store.get(key) is not None for key in keys]


async def test_screenshots_go_with_their_agent_and_their_org(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    store: ScreenshotStore,
) -> None:
    admin = await create_account(session, settings, platform_admin=True, org_name="Operator")
    owner = await create_account(session, settings, org_name="Leaving")
    other = await create_account(session, settings, org_name="Staying")
    agents = []
    for account, name in ((owner, "Scout"), (owner, "Clerk"), (other, "Scout")):
        made = await client.post("/api/v1/agents", json={"name": name}, headers=account.headers)
        agents.append(made.json()["id"])
    scout, clerk, others = (
        await shots(session, store, owner, agents[0], 3),
        await shots(session, store, owner, agents[1], 2),
        await shots(session, store, other, agents[2], 1),
    )

    # An agent deleted: its images go by a job queued with the deletion; its org's other agent keeps its.
    assert (await client.delete(f"/api/v1/agents/{agents[0]}", headers=owner.headers)).status_code == 204
    assert await jobs.run_pending() == ["3 screenshot(s) forgotten"]
    assert await kept(store, scout) == [False] * 3
    assert await kept(store, clerk + others) == [True] * 3
    count = select(func.count()).select_from(Screenshot).where(Screenshot.agent_id == agents[0])
    assert await session.scalar(count) == 0
    # Run again (a retried job): nothing left to remove, and no failure.
    assert jobs.worker_resources is not None
    assert (
        await jobs.execute(
            "deletion.forget_screenshots",
            {"keys": scout},
            job_id=0,
            attempt=1,
            resources=jobs.worker_resources,
        )
        == "3 screenshot(s) forgotten"
    )
    assert await kept(store, scout) == [False] * 3

    # The organisation deleted: every image under its prefix goes, the other org's stays.
    asked = await client.delete(f"/api/v1/admin/orgs/{owner.org.id}", headers=admin.headers)
    assert asked.status_code == 202, asked.text
    assert await jobs.run_pending() == ["done"]
    report = (await client.get(f"/api/v1/admin/deletions/{asked.json()['id']}", headers=admin.headers)).json()
    assert report["report"][f"screenshots:{owner.org.id}"] == "2 screenshot(s) removed"
    assert await kept(store, clerk) == [False, False]
    assert await kept(store, others) == [True]
    assert (
        await session.scalar(
            select(func.count()).select_from(Screenshot).where(Screenshot.org_id == owner.org.id)
        )
        == 0
    )

    # A crash after the images went but before the step was recorded: the retry does it again, and finishes.
    deletion_id = asked.json()["id"]
    row = await session.get(Deletion, deletion_id, populate_existing=True)
    assert row is not None
    unrecorded = {k: v for k, v in row.report.items() if not k.startswith("screenshots:")}
    await session.execute(
        update(Deletion)
        .where(Deletion.id == deletion_id)
        .values(report=unrecorded, status=DeletionStatus.FAILED, finished_at=None)
    )
    await session.commit()
    retried = await client.post(f"/api/v1/admin/deletions/{deletion_id}/retry", headers=admin.headers)
    assert retried.status_code == 202, retried.text
    assert await jobs.run_pending() == ["done"]
    again = (await client.get(f"/api/v1/admin/deletions/{deletion_id}", headers=admin.headers)).json()
    assert (
        again["status"] == "done"
        and again["report"][f"screenshots:{owner.org.id}"] == "0 screenshot(s) removed"
    )
    assert await kept(store, others) == [True]


async def test_an_agent_deleted_from_the_dashboard_takes_its_screenshots_along(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    resources: Resources,
) -> None:
    owner = await create_account(session, settings, org_name="Tidy")
    agent = (await client.post("/api/v1/agents", json={"name": "Scout"}, headers=owner.headers)).json()
    keys = await shots(session, resources.screenshots, owner, agent["id"], 2)
    await log_in(client, owner.user.email)
    form = await client.get(f"/app/agents/{agent['id']}/settings?confirm=1")
    deleted = await client.post(
        f"/app/agents/{agent['id']}/delete", data={"confirm": "Scout", "csrf": csrf_of(form)}
    )
    assert deleted.status_code == 303, deleted.text
    assert await jobs.run_pending() == ["2 screenshot(s) forgotten"]
    assert await kept(resources.screenshots, keys) == [False, False]
