"""The pages behind emailed links, as a person clicking them sees them (plain HTML forms)."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.fakes.smtp import SmtpServer


def path_of(link: str) -> str:
    return link.removeprefix("https://hutch.example")


async def test_verification_link_opens_a_page_that_confirms_once(
    client: AsyncClient, jobs: RecordingJobQueue, mailbox: SmtpServer
) -> None:
    await client.post("/api/v1/auth/signup", json={"email": "page@example.com", "password": "long-enough-pw"})
    await jobs.run_pending()
    link = path_of(mailbox.wait_for("page@example.com")[0].link("/verify-email"))
    page = await client.get(link)
    assert page.status_code == 200 and "page@example.com is confirmed" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    again = await client.get(link)
    assert again.status_code == 400 and "request a new one" in again.text
    assert (await client.get("/verify-email")).status_code == 400


async def test_reset_link_shows_a_form_that_sets_the_password(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    account = await create_account(session, settings, email="forgot@example.com")
    await client.post("/api/v1/auth/password-reset/request", json={"email": "forgot@example.com"})
    await jobs.run_pending()
    email = mailbox.wait_for("forgot@example.com")[0]
    form = await client.get(path_of(email.link("/reset-password")))
    assert form.status_code == 200 and f'value="{email.token()}"' in form.text
    weak = await client.post("/reset-password", data={"token": email.token(), "password": "password1"})
    assert weak.status_code == 400 and "too common" in weak.text
    done = await client.post("/reset-password", data={"token": email.token(), "password": "fresh-and-long"})
    assert done.status_code == 200 and "Password changed" in done.text
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.user.email, "password": "fresh-and-long"}
    )
    assert login.status_code == 200
    reused = await client.post(
        "/reset-password", data={"token": email.token(), "password": "another-long-one"}
    )
    assert reused.status_code == 400


async def test_invitation_page_lets_a_newcomer_join_and_an_existing_user_sign_in_to_join(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, org_name="Acme <Labs>")
    await create_account(session, settings, email="known@example.com", password="known-password")
    for address in ("fresh@example.com", "known@example.com"):
        response = await client.post(
            "/api/v1/org/invitations", json={"email": address}, headers=owner.headers
        )
        assert response.status_code == 201
    await jobs.run_pending()
    fresh = mailbox.wait_for("fresh@example.com")[0]
    known = mailbox.wait_for("known@example.com")[0]

    page = await client.get(path_of(fresh.link("/invitations/accept")))
    assert page.status_code == 200
    assert "Join Acme &lt;Labs&gt;" in page.text  # escaped
    assert "fresh@example.com" in page.text
    short = await client.post(
        "/invitations/accept", data={"token": fresh.token(), "action": "signup", "password": "short"}
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text
    joined = await client.post(
        "/invitations/accept",
        data={"token": fresh.token(), "action": "signup", "password": "newcomer-password", "name": "Fay"},
    )
    assert joined.status_code == 200 and "You joined Acme &lt;Labs&gt; as member" in joined.text

    wrong = await client.post(
        "/invitations/accept",
        data={"token": known.token(), "action": "login", "password": "not-the-password"},
    )
    assert wrong.status_code == 400 and "Incorrect email or password" in wrong.text
    signed_in = await client.post(
        "/invitations/accept", data={"token": known.token(), "action": "login", "password": "known-password"}
    )
    assert signed_in.status_code == 200
    members = (await client.get("/api/v1/org/members", headers=owner.headers)).json()["items"]
    assert sorted(m["email"] for m in members) == sorted(
        [owner.user.email, "fresh@example.com", "known@example.com"]
    )
    used = await client.get(path_of(fresh.link("/invitations/accept")))
    assert used.status_code == 400
