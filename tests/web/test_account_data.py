"""Your account page: download your data (ask, see when it is ready, download) and delete your account
(a confirmation that says what goes), through the same services as ``/api/v1/users/me``."""

from __future__ import annotations

import io
import zipfile

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, OrgRole, User
from hutch.audit.models import AuditEntry
from hutch.deletion.models import DataExport
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.web.test_dashboard import csrf_of, log_in


async def test_i_ask_for_my_data_see_when_it_is_ready_and_download_it(
    client: AsyncClient, session: AsyncSession, settings: Settings, jobs: RecordingJobQueue
) -> None:
    me = await create_account(session, settings, email="me@example.com", org_name="Mine")
    other = await create_account(session, settings, email="other@example.com")
    await log_in(client, me.user.email)
    page = await client.get("/app/account")
    assert page.status_code == 200 and "Download my data" in page.text and "No export yet" in page.text
    assert (await client.post("/app/account/export")).status_code == 403  # no CSRF token
    asked = await client.post("/app/account/export", data={"csrf": csrf_of(page)})
    assert asked.status_code == 303
    pending = await client.get(asked.headers["location"])
    assert "being prepared" in pending.text and "pending" in pending.text
    export = await session.scalar(select(DataExport).where(DataExport.user_id == me.user.id))
    assert export is not None

    assert await jobs.run_pending() == ["ready"]
    ready = await client.get("/app/account")
    link = f"/app/account/exports/{export.id}/download"
    assert link in ready.text and "ready" in ready.text
    download = await client.get(link)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert "account.json" in files and "conversations.json" in files
    listed = (await client.get("/api/v1/users/me/exports", headers=me.headers)).json()["items"]
    assert [e["id"] for e in listed] == [export.id] and listed[0]["status"] == "ready"

    await client.post("/logout")
    await log_in(client, other.user.email)
    assert (await client.get(link)).status_code == 404  # someone else's export


async def test_deleting_my_account_says_what_goes_and_needs_my_email(
    client: AsyncClient, session: AsyncSession, settings: Settings, jobs: RecordingJobQueue
) -> None:
    me = await create_account(session, settings, email="leaving@example.com", org_name="Solo Shop")
    shared = await create_account(session, settings, org_name="Shared Co")
    await create_account(session, settings, email="leaving-too@example.com", org=me.org, role=OrgRole.MEMBER)
    session.add(Membership(org_id=shared.org.id, user_id=me.user.id, role=OrgRole.MEMBER))  # it stays
    await session.commit()
    await log_in(client, me.user.email)

    asked = await client.get("/app/account/delete")
    assert asked.status_code == 200
    said = asked.text[asked.text.index('id="main"') :]  # the page, without the org switcher
    assert "Solo Shop" in said and "last owner" in said and "Shared Co" not in said
    assert "leaving-too@example.com" in said  # the member who belongs nowhere else goes too
    assert await session.scalar(select(User.id).where(User.id == me.user.id)) is not None

    forged = await client.post("/app/account/delete", data={"confirm": me.user.email})
    assert forged.status_code == 403
    wrong = await client.post(
        "/app/account/delete", data={"confirm": "someone@example.com", "csrf": csrf_of(asked)}
    )
    assert wrong.status_code == 422 and 'id="confirm-error"' in wrong.text
    assert not jobs.deferred

    gone = await client.post(
        "/app/account/delete", data={"confirm": "Leaving@Example.com", "csrf": csrf_of(asked)}
    )
    assert gone.status_code == 200 and "being deleted" in gone.text
    assert (await client.get("/app/account")).status_code == 303  # signed out
    assert await jobs.run_pending() == ["done"]
    assert await session.scalar(select(User.id).where(User.id == me.user.id)) is None
    assert await session.scalar(select(Org.id).where(Org.id == me.org.id)) is None
    assert await session.scalar(select(Org.id).where(Org.id == shared.org.id)) is not None
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "account_deletion_requested"))
    assert entry is not None and entry.target == me.user.id


async def test_members_of_a_suspended_org_still_reach_their_account_page(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    me = await create_account(session, settings, org_name="Paused Org")
    suspended = await client.post(
        f"/api/v1/admin/orgs/{me.org.id}/suspend", json={"reason": "unpaid"}, headers=admin.headers
    )
    assert suspended.status_code == 200
    await log_in(client, me.user.email)
    assert (await client.get("/app/agents")).status_code == 403
    page = await client.get("/app/account")
    assert page.status_code == 200 and "Request an export" in page.text
