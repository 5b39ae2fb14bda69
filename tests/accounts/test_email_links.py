"""Email verification and password reset, read from a real SMTP server's mailbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import EmailToken, User
from hutch.core.security import create_access_token
from hutch.notifications.models import OutboundEmail
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.fakes.smtp import SmtpServer

PASSWORD = "a-perfectly-fine-password"


async def signup(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_signup_emails_a_verification_link_that_works_once(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer, session: AsyncSession
) -> None:
    headers = await signup(client, "vera@example.com")
    assert mailbox.messages() == []  # sent by a job, after the signup committed
    await jobs.run_pending()
    [email] = mailbox.wait_for("vera@example.com")
    assert email.subject == "Confirm your email address"
    assert email.link("/verify-email").startswith("https://hutch.example/verify-email?token=")
    stored = (await session.scalars(select(OutboundEmail))).one()
    assert email.token() not in stored.body_encrypted and stored.sent_at is not None

    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["email_verified"] is False
    verified = await client.post("/api/v1/auth/verify-email", json={"token": email.token()})
    assert verified.status_code == 200 and verified.json() == {"email_verified": True}
    assert (await client.get("/api/v1/users/me", headers=headers)).json()["email_verified"] is True
    again = await client.post("/api/v1/auth/verify-email", json={"token": email.token()})
    assert again.status_code == 400 and "request a new one" in again.json()["detail"]


async def test_a_resent_link_replaces_the_old_one_and_verified_users_get_409(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer
) -> None:
    headers = await signup(client, "resend@example.com")
    resent = await client.post("/api/v1/auth/verify-email/send", headers=headers)
    assert resent.status_code == 202
    await jobs.run_pending()
    first, second = mailbox.wait_for("resend@example.com", count=2)
    stale = await client.post("/api/v1/auth/verify-email", json={"token": first.token()})
    assert stale.status_code == 400
    assert (await client.post("/api/v1/auth/verify-email", json={"token": second.token()})).status_code == 200
    assert (await client.post("/api/v1/auth/verify-email/send", headers=headers)).status_code == 409


async def test_expired_verification_link_is_refused(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer, session: AsyncSession
) -> None:
    await signup(client, "late@example.com")
    await jobs.run_pending()
    [email] = mailbox.wait_for("late@example.com")
    await session.execute(update(EmailToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await session.commit()
    response = await client.post("/api/v1/auth/verify-email", json={"token": email.token()})
    assert response.status_code == 400
    user = (await session.scalars(select(User).where(User.email == "late@example.com"))).one()
    assert user.email_verified_at is None


async def test_password_reset_changes_the_password_and_ends_every_session(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer, settings: Settings
) -> None:
    signup_response = await client.post(
        "/api/v1/auth/signup", json={"email": "rita@example.com", "password": PASSWORD}
    )
    old = signup_response.json()
    await jobs.run_pending()
    mailbox.reset()

    asked = await client.post("/api/v1/auth/password-reset/request", json={"email": " RITA@example.com "})
    unknown = await client.post("/api/v1/auth/password-reset/request", json={"email": "nobody@example.com"})
    assert asked.status_code == unknown.status_code == 202
    assert asked.json() == unknown.json()  # nothing tells whether the account exists
    await jobs.run_pending()
    [email] = mailbox.wait_for("rita@example.com")
    assert mailbox.messages("nobody@example.com") == []
    assert email.subject == "Reset your password"

    weak = await client.post(
        "/api/v1/auth/password-reset", json={"token": email.token(), "password": "short"}
    )
    assert weak.status_code == 422
    done = await client.post(
        "/api/v1/auth/password-reset", json={"token": email.token(), "password": "a-brand-new-password"}
    )
    assert done.status_code == 200
    reused = await client.post(
        "/api/v1/auth/password-reset", json={"token": email.token(), "password": "yet-another-password"}
    )
    assert reused.status_code == 400

    login = {"email": "rita@example.com"}
    assert (await client.post("/api/v1/auth/login", json={**login, "password": PASSWORD})).status_code == 401
    fresh = await client.post("/api/v1/auth/login", json={**login, "password": "a-brand-new-password"})
    assert fresh.status_code == 200
    # Sessions from before the reset are over: the refresh token and the access token.
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    ).status_code == 401
    issued_before = create_access_token(
        settings.require_secret_key(),
        old["user"]["id"],
        timedelta(minutes=15),
        iat=datetime.now(UTC) - timedelta(seconds=5),
    )
    stale = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {issued_before}"})
    assert stale.status_code == 401
    fresh_headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=fresh_headers)).status_code == 200


async def test_reset_requests_are_limited_per_address(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer
) -> None:
    await signup(client, "spam@example.com")
    await jobs.run_pending()
    mailbox.reset()
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/password-reset/request", json={"email": "spam@example.com"}
        )
        assert response.status_code == 202
    await jobs.run_pending()
    assert len(mailbox.messages("spam@example.com")) == 3
