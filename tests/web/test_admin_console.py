"""The admin console's actions as a platform admin uses them: each asks on a page first (a GET that changes
nothing), acts on the POST through the API's services, and leaves an audit entry."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.audit.models import AuditEntry
from hutch.botfactory.models import AccountStatus, CreatorAccount
from hutch.core.ids import new_id
from hutch.deletion.models import Deletion, DeletionStatus, Subject
from hutch.runtimes.models import RuntimeHost
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.botfather import fake_session
from tests.web.test_dashboard import csrf_of, log_in


async def admin_signed_in(client: AsyncClient, session: AsyncSession, settings: Settings) -> Account:
    admin = await create_account(session, settings, platform_admin=True, org_name="Operator")
    await log_in(client, admin.user.email)
    return admin


async def confirmed(client: AsyncClient, path: str, form: dict[str, str] | None = None) -> Response:
    """Open the confirmation page, then send its form (with the page's CSRF token)."""
    asked = await client.get(path)
    assert asked.status_code == 200, asked.text[:500]
    return await client.post(path, data={**(form or {}), "csrf": csrf_of(asked)})


async def actions(session: AsyncSession, target: str) -> list[str]:
    rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.target == target).order_by(AuditEntry.id)
    )
    return [e.action for e in rows.all()]


async def test_an_org_is_suspended_and_reinstated_only_once_confirmed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await admin_signed_in(client, session, settings)
    customer = await create_account(session, settings, org_name="Acme Robots")
    org_id = customer.org.id
    listing = await client.get("/admin/orgs")
    assert f'href="/admin/orgs/{org_id}"' in listing.text
    shown = await client.get(f"/admin/orgs/{org_id}")
    assert shown.status_code == 200 and "Acme Robots" in shown.text and customer.user.email in shown.text

    asked = await client.get(f"/admin/orgs/{org_id}/suspend")
    assert asked.status_code == 200 and "Its agents answer every channel" in asked.text
    assert (
        await session.scalar(select(Org.suspended_at).where(Org.id == org_id)) is None
    )  # asking did nothing
    forged = await client.post(f"/admin/orgs/{org_id}/suspend", data={"reason": "spam"})
    assert forged.status_code == 403
    empty = await client.post(f"/admin/orgs/{org_id}/suspend", data={"reason": " ", "csrf": csrf_of(asked)})
    assert empty.status_code == 422 and 'id="reason-error"' in empty.text
    assert await session.scalar(select(Org.suspended_at).where(Org.id == org_id)) is None

    done = await client.post(f"/admin/orgs/{org_id}/suspend", data={"reason": "spam", "csrf": csrf_of(asked)})
    assert done.status_code == 303 and done.headers["location"].startswith(f"/admin/orgs/{org_id}?done=")
    assert await session.scalar(select(Org.suspension_reason).where(Org.id == org_id)) == "spam"
    page = await client.get(done.headers["location"])
    assert (
        "Suspended." in page.text and "spam" in page.text and f"/admin/orgs/{org_id}/reinstate" in page.text
    )
    twice = await client.post(
        f"/admin/orgs/{org_id}/suspend", data={"reason": "again", "csrf": csrf_of(asked)}
    )
    assert twice.status_code == 409 and "already suspended" in twice.text
    refused = await client.get("/api/v1/org", headers=customer.headers)
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]

    back = await confirmed(client, f"/admin/orgs/{org_id}/reinstate")
    assert back.status_code == 303
    assert await session.scalar(select(Org.suspended_at).where(Org.id == org_id)) is None
    assert (await client.get("/api/v1/org", headers=customer.headers)).status_code == 200
    assert await actions(session, org_id) == ["org_suspended", "org_reinstated"]
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "org_suspended"))
    assert entry is not None and entry.actor_user_id == admin.user.id and entry.details == {"reason": "spam"}


async def test_plan_and_grants_change_an_org_and_show_in_its_ledger(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await admin_signed_in(client, session, settings)
    customer = await create_account(session, settings, org_name="Acme")
    org_id = customer.org.id
    asked = await client.get(f"/admin/orgs/{org_id}/plan")
    assert asked.status_code == 200 and '<option value="pro"' in asked.text
    unknown = await client.post(f"/admin/orgs/{org_id}/plan", data={"plan": "gold", "csrf": csrf_of(asked)})
    assert unknown.status_code == 400 and "Unknown plan" in unknown.text
    moved = await client.post(f"/admin/orgs/{org_id}/plan", data={"plan": "pro", "csrf": csrf_of(asked)})
    assert moved.status_code == 303
    assert await session.scalar(select(Org.plan).where(Org.id == org_id)) == "pro"

    form = await client.get(f"/admin/orgs/{org_id}/grant")
    token = csrf_of(form)
    bad = await client.post(
        f"/admin/orgs/{org_id}/grant", data={"credits": "2.555", "reason": "sorry", "csrf": token}
    )
    assert bad.status_code == 422 and 'id="credits-error"' in bad.text
    nothing = await client.post(f"/admin/orgs/{org_id}/grant", data={"reason": "sorry", "csrf": token})
    assert nothing.status_code == 422 and "Give credits, time or both" in nothing.text
    granted = await client.post(
        f"/admin/orgs/{org_id}/grant",
        data={"credits": "2.50", "minutes": "3", "reason": "outage on Monday", "csrf": token},
    )
    assert granted.status_code == 303
    page = await client.get(f"/admin/orgs/{org_id}")
    assert "Grant: outage on Monday" in page.text and "$2.50" in page.text and "3 min" in page.text
    assert await actions(session, org_id) == ["plan_assigned", "billing_grant"]


async def test_deleting_an_org_names_what_goes_then_shows_its_progress_and_report(
    client: AsyncClient, session: AsyncSession, settings: Settings, jobs: RecordingJobQueue
) -> None:
    await admin_signed_in(client, session, settings)
    customer = await create_account(session, settings, org_name="Doomed Ltd", email="doomed@example.com")
    agent = await client.post("/api/v1/agents", json={"name": "Kettle"}, headers=customer.headers)
    assert agent.status_code == 201
    org_id = customer.org.id

    asked = await client.get(f"/admin/orgs/{org_id}/delete")
    assert asked.status_code == 200
    assert (
        "1 agent(s)" in asked.text and "doomed@example.com" in asked.text and "cannot be undone" in asked.text
    )
    wrong = await client.post(
        f"/admin/orgs/{org_id}/delete", data={"confirm": "doomed", "csrf": csrf_of(asked)}
    )
    assert wrong.status_code == 422 and 'id="confirm-error"' in wrong.text
    assert await session.scalar(select(Deletion.id)) is None

    sent = await client.post(
        f"/admin/orgs/{org_id}/delete", data={"confirm": "Doomed Ltd", "csrf": csrf_of(asked)}
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/admin/deletions/del_")
    progress = await client.get(sent.headers["location"])
    assert "In progress" in progress.text and "pending" in progress.text
    assert await jobs.run_pending() == ["done"]

    report = await client.get(sent.headers["location"])
    assert "Done" in report.text and "data:" + org_id in report.text and "1 user(s) deleted" in report.text
    listing = await client.get("/admin/deletions")
    assert "Doomed Ltd" in listing.text and "done" in listing.text
    assert await session.scalar(select(Org.id).where(Org.id == org_id)) is None
    deletion = await session.scalar(select(Deletion))
    assert deletion is not None and deletion.export_id is not None
    download = await client.get(f"/app/account/exports/{deletion.export_id}/download")
    assert download.status_code == 200
    assert "account.json" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert await actions(session, org_id) == ["org_deletion_requested", "org_deleted"]


async def test_a_failed_deletion_is_retried_from_the_deletions_page_once_confirmed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await admin_signed_in(client, session, settings)
    failed = Deletion(
        id=new_id("del"),
        subject=Subject.ORG,
        subject_id="org_gone",
        subject_label="Half Gone Inc",
        status=DeletionStatus.FAILED,
        report={"orgs": ["org_gone"], "users_to_delete": [], "export": "ready: exp_x"},
        error="stripe:org_gone: Stripe is not configured",
        attempts=5,
    )
    session.add(failed)
    await session.commit()
    listing = await client.get("/admin/deletions")
    assert (
        f'href="/admin/deletions/{failed.id}/retry"' in listing.text
        and "Stripe is not configured" in listing.text
    )
    asked = await client.get(f"/admin/deletions/{failed.id}/retry")
    assert asked.status_code == 200 and "Done so far: export" in asked.text
    assert (
        await session.scalar(select(Deletion.status).where(Deletion.id == failed.id)) is DeletionStatus.FAILED
    )
    retried = await client.post(f"/admin/deletions/{failed.id}/retry", data={"csrf": csrf_of(asked)})
    assert retried.status_code == 303
    assert (
        await session.scalar(select(Deletion.status).where(Deletion.id == failed.id))
        is DeletionStatus.PENDING
    )
    again = await client.post(f"/admin/deletions/{failed.id}/retry", data={"csrf": csrf_of(asked)})
    assert again.status_code == 409 and "only a failed one is retried" in again.text
    assert await actions(session, failed.id) == ["deletion_retried"]


async def test_a_user_is_suspended_reinstated_and_deleted_from_their_page(
    client: AsyncClient, session: AsyncSession, settings: Settings, jobs: RecordingJobQueue
) -> None:
    admin = await admin_signed_in(client, session, settings)
    user = await create_account(session, settings, email="ursula@example.com", org_name="Ursula's")
    mine = await client.get(f"/admin/users/{admin.user.id}")
    assert "This is you" in mine.text and f"/admin/users/{admin.user.id}/suspend" not in mine.text
    shown = await client.get(f"/admin/users/{user.user.id}")
    assert shown.status_code == 200 and "Ursula&#39;s" in shown.text

    assert (
        await confirmed(client, f"/admin/users/{user.user.id}/suspend", {"reason": "fraud"})
    ).status_code == 303
    assert await session.scalar(select(User.suspension_reason).where(User.id == user.user.id)) == "fraud"
    blocked = await client.get("/api/v1/users/me", headers=user.headers)
    assert blocked.status_code == 403 and "fraud" in blocked.json()["detail"]
    assert (await confirmed(client, f"/admin/users/{user.user.id}/reinstate")).status_code == 303
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200

    asked = await client.get(f"/admin/users/{user.user.id}/delete")
    assert "The organisation Ursula&#39;s" in asked.text
    sent = await client.post(
        f"/admin/users/{user.user.id}/delete", data={"confirm": "URSULA@example.com", "csrf": csrf_of(asked)}
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/admin/deletions/")
    assert await jobs.run_pending() == ["done"]
    assert await session.scalar(select(User.id).where(User.id == user.user.id)) is None
    assert await actions(session, user.user.id) == [
        "user_suspended",
        "user_reinstated",
        "user_deletion_requested",
        "user_deleted",
    ]


async def test_creator_accounts_are_added_paused_resumed_and_removed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await admin_signed_in(client, session, settings)
    form = await client.get("/admin/creator-accounts/new")
    assert form.status_code == 200
    fields = {"phone": "+15550001234", "api_id": "12345", "api_hash": "0123456789abcdef0123456789abcdef"}
    bad = await client.post(
        "/admin/creator-accounts", data={**fields, "session": "not-a-session-at-all!", "csrf": csrf_of(form)}
    )
    assert bad.status_code == 422 and 'id="session-error"' in bad.text
    added = await client.post(
        "/admin/creator-accounts", data={**fields, "session": fake_session(), "csrf": csrf_of(form)}
    )
    assert added.status_code == 303, added.text[:500]
    account = await session.scalar(select(CreatorAccount).where(CreatorAccount.phone == "+15550001234"))
    assert account is not None

    pause = await client.get(f"/admin/creator-accounts/{account.id}/status?status=locked")
    assert pause.status_code == 200 and "makes no new bots" in pause.text
    sent = await client.post(
        f"/admin/creator-accounts/{account.id}/status", data={"status": "locked", "csrf": csrf_of(pause)}
    )
    assert sent.status_code == 303
    status = select(CreatorAccount.status).where(CreatorAccount.id == account.id)
    assert await session.scalar(status) is AccountStatus.LOCKED
    assert (
        await confirmed(
            client, f"/admin/creator-accounts/{account.id}/status?status=active", {"status": "active"}
        )
    ).status_code == 303
    assert await session.scalar(status) is AccountStatus.ACTIVE
    assert (await confirmed(client, f"/admin/creator-accounts/{account.id}/remove")).status_code == 303
    assert await session.scalar(select(CreatorAccount.id).where(CreatorAccount.id == account.id)) is None
    assert await actions(session, account.id) == [
        "creator_account_added",
        "creator_account_changed",
        "creator_account_changed",
        "creator_account_removed",
    ]


async def test_runtime_hosts_are_added_paused_resumed_and_removed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    await admin_signed_in(client, session, settings)
    form = await client.get("/admin/runtime-hosts/new")
    values = {"name": "docker-2", "driver": "docker", "address": "tcp://10.0.0.9:2375", "max_runtimes": "3"}
    short = await client.post(
        "/admin/runtime-hosts", data={**values, "max_runtimes": "0", "csrf": csrf_of(form)}
    )
    assert short.status_code == 422 and 'id="max_runtimes-error"' in short.text
    added = await client.post("/admin/runtime-hosts", data={**values, "csrf": csrf_of(form)})
    assert added.status_code == 303
    host = await session.scalar(select(RuntimeHost).where(RuntimeHost.name == "docker-2"))
    assert host is not None and host.enabled
    listing = await client.get("/admin/runtime-hosts")
    assert "docker-2" in listing.text and f"/admin/runtime-hosts/{host.id}/pause" in listing.text
    same = await client.post("/admin/runtime-hosts", data={**values, "csrf": csrf_of(form)})
    assert same.status_code == 409 and "already named docker-2" in same.text

    asked = await client.get(f"/admin/runtime-hosts/{host.id}/pause")
    await session.refresh(host)
    assert asked.status_code == 200 and host.enabled  # asking changed nothing
    assert (
        await client.post(f"/admin/runtime-hosts/{host.id}/pause", data={"csrf": csrf_of(asked)})
    ).status_code == 303
    await session.refresh(host)
    assert not host.enabled
    assert (await confirmed(client, f"/admin/runtime-hosts/{host.id}/resume")).status_code == 303
    assert (await confirmed(client, f"/admin/runtime-hosts/{host.id}/remove")).status_code == 303
    assert await session.scalar(select(RuntimeHost.id).where(RuntimeHost.id == host.id)) is None
    assert await actions(session, host.id) == [
        "runtime_host_added",
        "runtime_host_paused",
        "runtime_host_resumed",
        "runtime_host_removed",
    ]


async def test_the_audit_log_filters_by_actor_action_org_and_days_and_margins_show(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await admin_signed_in(client, session, settings)
    customer = await create_account(session, settings, org_name="Filtered")
    await confirmed(client, f"/admin/orgs/{customer.org.id}/suspend", {"reason": "audit me"})
    await confirmed(client, f"/admin/orgs/{customer.org.id}/reinstate")

    everything = await client.get("/admin/audit-log")
    assert everything.status_code == 200 and "org_suspended" in everything.text and "login" in everything.text
    by_action = await client.get("/admin/audit-log?action=org_suspended")
    assert "audit me" in by_action.text and "org_reinstated</td>" not in by_action.text
    by_actor = await client.get(f"/admin/audit-log?actor={admin.user.email}&org_id={customer.org.id}")
    assert "org_suspended" in by_actor.text and "org_reinstated" in by_actor.text
    nobody = await client.get("/admin/audit-log?actor=nobody@example.com")
    assert "No entry matches" in nobody.text
    today = datetime.now(UTC).date()
    within = await client.get(f"/admin/audit-log?action=org_suspended&from={today}&to={today}")
    assert "audit me" in within.text
    before = await client.get(f"/admin/audit-log?action=org_suspended&to={today - timedelta(days=1)}")
    assert "audit me" not in before.text
    backwards = await client.get(f"/admin/audit-log?from={today}&to={today - timedelta(days=2)}")
    assert backwards.status_code == 200 and "on or after" in backwards.text

    margins = await client.get("/admin/margins?days=30")
    assert margins.status_code == 200 and "Margins" in margins.text
