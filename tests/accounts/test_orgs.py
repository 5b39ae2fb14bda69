"""Organisations: members, roles, the last owner, invitations by email, several orgs per user."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, OrgRole
from hutch.audit.models import AuditEntry
from hutch.settings import Settings
from tests.conftest import LiveDeployment, RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.smtp import SmtpServer


async def invite(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer, by: Account, email: str, role: str
) -> str:
    response = await client.post(
        "/api/v1/org/invitations", json={"email": email, "role": role}, headers=by.headers
    )
    assert response.status_code == 201, response.text
    await jobs.run_pending()
    return mailbox.wait_for(email)[-1].token()


async def test_invited_newcomer_signs_up_into_the_inviting_org(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, org_name="Acme")
    token = await invite(client, jobs, mailbox, owner, "new@example.com", "admin")
    [email] = mailbox.messages("new@example.com")
    assert email.subject == "You are invited to join Acme"
    assert email.link("/invitations/accept").startswith("https://hutch.example/invitations/accept?token=")

    wrong_email = await client.post(
        "/api/v1/auth/signup",
        json={"email": "other@example.com", "password": "long-enough-pw", "invitation_token": token},
    )
    assert wrong_email.status_code == 403
    joined = await client.post(
        "/api/v1/auth/signup",
        json={"email": "new@example.com", "password": "long-enough-pw", "invitation_token": token},
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["org"]["id"] == owner.org.id
    headers = {"Authorization": f"Bearer {joined.json()['access_token']}"}
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert me["email_verified"] is True  # the invitation came to this mailbox
    assert me["orgs"] == [{"id": owner.org.id, "name": "Acme", "plan": "free", "role": "admin"}]
    members = (await client.get("/api/v1/org/members", headers=owner.headers)).json()["items"]
    assert sorted(m["role"] for m in members) == ["admin", "owner"]
    # single use
    again = await client.post("/api/v1/invitations/accept", json={"token": token}, headers=headers)
    assert again.status_code == 400


async def test_existing_user_accepts_and_switches_orgs_with_the_header(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, org_name="Acme")
    guest = await create_account(session, settings, email="guest@example.com", org_name="Guest Co")
    # Their own org came first (in one test transaction every row would share the same now()).
    await session.execute(
        update(Membership)
        .where(Membership.user_id == guest.user.id)
        .values(created_at=datetime.now(UTC) - timedelta(days=1))
    )
    await session.commit()
    token = await invite(client, jobs, mailbox, owner, "guest@example.com", "member")
    accepted = await client.post("/api/v1/invitations/accept", json={"token": token}, headers=guest.headers)
    assert accepted.status_code == 200
    assert accepted.json() == {"id": owner.org.id, "name": "Acme", "plan": "free", "role": "member"}

    default = (await client.get("/api/v1/org", headers=guest.headers)).json()
    assert default["id"] == guest.org.id and default["role"] == "owner"
    acme = await client.get("/api/v1/org", headers={**guest.headers, "X-Org-Id": owner.org.id})
    assert acme.json()["id"] == owner.org.id and acme.json()["member_count"] == 2
    assert acme.json()["role"] == "member"
    # a member cannot rename, invite or change roles
    as_member = {**guest.headers, "X-Org-Id": owner.org.id}
    assert (await client.patch("/api/v1/org", json={"name": "Mine"}, headers=as_member)).status_code == 403
    assert (
        await client.post("/api/v1/org/invitations", json={"email": "x@example.com"}, headers=as_member)
    ).status_code == 403
    assert (
        await client.patch(f"/api/v1/org/members/{owner.user.id}", json={"role": "member"}, headers=as_member)
    ).status_code == 403


async def test_invitation_for_someone_else_and_revoked_invitations_fail(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings)
    stranger = await create_account(session, settings, email="stranger@example.com")
    token = await invite(client, jobs, mailbox, owner, "friend@example.com", "member")
    stolen = await client.post("/api/v1/invitations/accept", json={"token": token}, headers=stranger.headers)
    assert stolen.status_code == 403

    pending = (await client.get("/api/v1/org/invitations", headers=owner.headers)).json()["items"]
    assert [p["email"] for p in pending] == ["friend@example.com"]
    assert token not in str(pending)
    deleted = await client.delete(f"/api/v1/org/invitations/{pending[0]['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert (await client.get("/api/v1/org/invitations", headers=owner.headers)).json()["items"] == []
    friend = await client.post(
        "/api/v1/auth/signup",
        json={"email": "friend@example.com", "password": "long-enough-pw", "invitation_token": token},
    )
    assert friend.status_code == 400
    # nothing was created by the refused signup
    assert (
        await client.post(
            "/api/v1/auth/login", json={"email": "friend@example.com", "password": "long-enough-pw"}
        )
    ).status_code == 401


async def test_inviting_a_member_twice_or_above_your_role(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings)
    admin = await create_account(session, settings, org=owner.org, role=OrgRole.ADMIN)
    existing = await client.post(
        "/api/v1/org/invitations", json={"email": admin.user.email}, headers=owner.headers
    )
    assert existing.status_code == 409
    above = await client.post(
        "/api/v1/org/invitations", json={"email": "boss@example.com", "role": "owner"}, headers=admin.headers
    )
    assert above.status_code == 403
    ok = await client.post(
        "/api/v1/org/invitations",
        json={"email": "helper@example.com", "role": "admin"},
        headers=admin.headers,
    )
    assert ok.status_code == 201
    bad = await client.post("/api/v1/org/invitations", json={"email": "not-an-email"}, headers=owner.headers)
    assert bad.status_code == 422


async def test_roles_change_and_the_last_owner_stays(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    member = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)

    alone = await client.patch(
        f"/api/v1/org/members/{owner.user.id}", json={"role": "admin"}, headers=owner.headers
    )
    assert alone.status_code == 409 and "at least one owner" in alone.json()["detail"]
    assert (
        await client.delete(f"/api/v1/org/members/{owner.user.id}", headers=owner.headers)
    ).status_code == 409

    promoted = await client.patch(
        f"/api/v1/org/members/{member.user.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "owner"
    stepped_down = await client.patch(
        f"/api/v1/org/members/{owner.user.id}", json={"role": "member"}, headers=owner.headers
    )
    assert stepped_down.status_code == 200
    changes = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "role_changed"))).all()
    assert [(c.target, c.details["to"]) for c in changes] == [
        (member.user.id, "owner"),
        (owner.user.id, "member"),
    ]
    bad_role = await client.patch(
        f"/api/v1/org/members/{owner.user.id}", json={"role": "emperor"}, headers=member.headers
    )
    assert bad_role.status_code == 422


async def test_members_leave_owners_remove_and_a_user_without_org_can_start_again(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    member = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)
    other = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)
    assert (
        await client.delete(f"/api/v1/org/members/{other.user.id}", headers=member.headers)
    ).status_code == 403
    assert (
        await client.delete(f"/api/v1/org/members/{other.user.id}", headers=owner.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/api/v1/org/members/{member.user.id}", headers=member.headers)
    ).status_code == 204
    assert (await client.delete("/api/v1/org/members/usr_nobody", headers=owner.headers)).status_code == 404

    # Without any org, the user still signs in, sees themselves, and can create an org.
    me = await client.get("/api/v1/users/me", headers=member.headers)
    assert me.status_code == 200 and me.json()["orgs"] == []
    no_org = await client.get("/api/v1/org", headers=member.headers)
    assert no_org.status_code == 404 and "POST /api/v1/orgs" in no_org.json()["detail"]
    created = await client.post("/api/v1/orgs", json={"name": "Fresh Start"}, headers=member.headers)
    assert created.status_code == 201 and created.json()["role"] == "owner"
    assert (await client.get("/api/v1/org", headers=member.headers)).json()["name"] == "Fresh Start"


async def test_two_owners_removing_each_other_at_once_leave_one_owner(
    live: LiveDeployment, settings: Settings
) -> None:
    for _ in range(5):
        first = await create_account(live.session, settings)
        second = await create_account(live.session, settings, org=first.org, role=OrgRole.OWNER)
        results = await asyncio.gather(
            live.client.delete(f"/api/v1/org/members/{second.user.id}", headers=first.headers),
            live.client.delete(f"/api/v1/org/members/{first.user.id}", headers=second.headers),
        )
        # One removal wins; the other finds its caller gone (404) or itself the last owner (409).
        statuses = sorted(r.status_code for r in results)
        assert statuses in ([204, 404], [204, 409]), statuses
        owners = await live.session.scalars(
            select(Membership.user_id).where(
                Membership.org_id == first.org.id, Membership.role == OrgRole.OWNER
            )
        )
        assert len(owners.all()) == 1


async def test_org_rename_and_profile_and_password_change(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    renamed = await client.patch("/api/v1/org", json={"name": "  New Name "}, headers=owner.headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "New Name"
    assert (await client.patch("/api/v1/org", json={"name": ""}, headers=owner.headers)).status_code == 422
    profile = await client.patch("/api/v1/users/me", json={"name": "Ada"}, headers=owner.headers)
    assert profile.status_code == 200 and profile.json()["name"] == "Ada"

    wrong = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": "not-it-at-all", "new_password": "another-good-one"},
        headers=owner.headers,
    )
    assert wrong.status_code == 403
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": owner.password, "new_password": "another-good-one"},
        headers=owner.headers,
    )
    assert changed.status_code == 200 and changed.json()["access_token"]
    login = await client.post(
        "/api/v1/auth/login", json={"email": owner.user.email, "password": "another-good-one"}
    )
    assert login.status_code == 200
