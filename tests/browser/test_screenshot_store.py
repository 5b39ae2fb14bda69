"""Screenshots in an S3-compatible bucket (boto3 against moto's server): kept, read back through the
screenshot URL by the agent's org, refused to others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from httpx import AsyncClient
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
from hutch.browser.screenshots import (
    BucketScreenshots,
    FileScreenshots,
    ScreenshotStore,
    build_screenshot_store,
    screenshot_key,
)
from hutch.browser.service import screenshot_url
from hutch.core.ids import new_id
from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import create_account
from tests.web.test_dashboard import log_in

BUCKET = "hutch-screens"
JPEG = b"\xff\xd8\xff\xe0 a screen"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


async def test_a_screenshot_in_the_bucket_answers_through_its_url_to_its_org_only(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources, s3_endpoint: str
) -> None:
    store = _bucket(settings, s3_endpoint)
    resources.screenshots = store
    owner = await create_account(session, settings, org_name="Bucketeers")
    stranger = await create_account(session, settings, org_name="Others")
    agent = (await client.post("/api/v1/agents", json={"name": "Clerk"}, headers=owner.headers)).json()
    shot_id = new_id("shot")
    key = screenshot_key(owner.org.id, shot_id)
    await store.put(key, JPEG, "image/jpeg")
    session.add(_row(shot_id, owner.org.id, agent["id"], key))
    await session.commit()

    object_ = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    ).get_object(Bucket=BUCKET, Key=key)
    assert object_["Body"].read() == JPEG and object_["ContentType"] == "image/jpeg"
    answer = await client.get(screenshot_url(shot_id), headers=owner.headers)
    assert answer.status_code == 200 and answer.content == JPEG
    assert (await client.get(screenshot_url(shot_id), headers=stranger.headers)).status_code == 404
    assert await store.get(screenshot_key(owner.org.id, "shot_gone")) is None


def _row(shot_id: str, org_id: str, agent_id: str, key: str) -> Screenshot:
    """A screenshot row of an opened page, its image kept under ``key``."""
    return Screenshot(
        id=shot_id,
        org_id=org_id,
        agent_id=agent_id,
        action="open",
        page_url="https://example.org/",
        storage_key=key,
        content_type="image/jpeg",
        size_bytes=len(JPEG),
        created_at=datetime.now(UTC),
    )


def _bucket(settings: Settings, endpoint: str) -> BucketScreenshots:
    store = build_screenshot_store(
        settings.model_copy(
            update={
                "screenshots_bucket": BUCKET,
                "screenshots_s3_endpoint_url": endpoint,
                "screenshots_s3_access_key_id": SecretStr("k"),
                "screenshots_s3_secret_access_key": SecretStr("s"),
            }
        )
    )
    assert isinstance(store, BucketScreenshots)
    return store


@pytest.mark.parametrize("kind", ["files", "bucket"])
async def test_a_row_whose_key_is_malformed_or_unknown_answers_404_and_the_others_still_show(
    kind: str,
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    resources: Resources,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    store: ScreenshotStore = (
        FileScreenshots(tmp_path / "screens") if kind == "files" else _bucket(settings, s3_endpoint)
    )
    resources.screenshots = store
    owner = await create_account(session, settings, org_name="Keepers")
    other = await create_account(session, settings, org_name="Neighbours")
    agent = (await client.post("/api/v1/agents", json={"name": "Clerk"}, headers=owner.headers)).json()
    org = owner.org.id
    good = screenshot_key(org, "shot_good")
    await store.put(good, JPEG, "image/jpeg")
    neighbours = screenshot_key(other.org.id, "shot_theirs")  # a real image, of another org
    await store.put(neighbours, b"\xff\xd8 theirs", "image/jpeg")
    keys = {
        "good": good,
        "bare": "none.jpg",
        "empty": "",
        "up": "../../etc/passwd",
        "up_inside": f"{org}/../{other.org.id}/shot_theirs.jpg",
        "absolute": f"/{org}/shot_good.jpg",
        "deeper": f"{org}/sub/shot_good.jpg",
        "gif": f"{org}/shot_good.gif",
        "spaces": f"{org}/shot good.jpg",
        "unicode": f"{org}/shöt.jpg",
        "newline": f"{good}\n",
        "long": f"{org}/{'x' * 260}.jpg",
        "unknown": screenshot_key(org, "shot_never_kept"),
        "neighbours": neighbours,
    }
    ids = {name: new_id("shot") for name in keys}
    session.add_all(_row(ids[name], org, agent["id"], key) for name, key in keys.items())
    await session.commit()

    await log_in(client, owner.user.email)  # the dashboard's image URL too
    for name in keys:
        api = await client.get(screenshot_url(ids[name]), headers=owner.headers)
        page = await client.get(f"/app/screenshots/{ids[name]}")
        if name == "good":
            assert api.status_code == page.status_code == 200 and api.content == page.content == JPEG
        else:
            assert (api.status_code, page.status_code) == (404, 404), (name, api.text, page.text)
            assert api.json() == {"detail": "Screenshot not found."}
    # Deleting the rows' keys, malformed ones too, removes the org's image and nothing outside it.
    await store.delete([key for name, key in keys.items() if name != "neighbours"])
    assert await store.get(good) is None
    assert await store.get(neighbours) == b"\xff\xd8 theirs"
