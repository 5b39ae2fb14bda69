"""Every email a customer gets links to a page of the dashboard (or a one-time link page), never to an API
path: a person reading an email cannot call ``POST /api/v1/...``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.billing.ledger import LOW_BALANCE_JOB
from hutch.billing.quotas import QUOTA_NOTICE_JOB
from hutch.billing.webhooks import PAYMENT_FAILED_JOB
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.fakes.smtp import SmtpServer

SRC = Path(__file__).resolve().parents[2] / "src" / "hutch"
URL = re.compile(r"https?://[^\s/]+(/[^\s]*)")
SENDS_EMAIL = {"queue_email", "email_owners"}
API_PATH = re.compile(r"/(api|v1|webhooks)/")


def paths_in(body: str) -> list[str]:
    return [found.group(1) for found in URL.finditer(body)]


async def test_customer_emails_link_to_dashboard_pages(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, email="owner@links.example", org_name="Links Ltd")
    await client.post("/api/v1/org/invitations", json={"email": "new@links.example"}, headers=owner.headers)
    await client.post("/api/v1/auth/password-reset/request", json={"email": "owner@links.example"})
    jobs.deferred += [
        (LOW_BALANCE_JOB, {"org_id": owner.org.id, "credits_cents": 120}),
        (PAYMENT_FAILED_JOB, {"org_id": owner.org.id, "amount_cents": 900}),
        (QUOTA_NOTICE_JOB, {"org_id": owner.org.id, "percent": 80}),
        (QUOTA_NOTICE_JOB, {"org_id": owner.org.id, "percent": 100}),
    ]
    await jobs.run_pending()
    emails = mailbox.wait_for("owner@links.example", count=5) + mailbox.wait_for("new@links.example")

    for email in emails:
        linked = paths_in(email.body)
        assert linked, f"{email.subject!r} links nowhere: {email.body}"
        for path in linked:
            assert not API_PATH.match(path), f"{email.subject!r} links to the API ({path}): {email.body}"
    by_subject = {email.subject: paths_in(email.body) for email in emails}
    notices = [s for s in by_subject if s.startswith("Links Ltd:")]
    assert len(notices) == 4
    for subject in notices:  # what to do about it, and how to hear less of it
        assert "/app/billing" in by_subject[subject], subject
        assert "/app/settings/notifications" in by_subject[subject], subject


def test_no_email_is_written_with_an_api_path() -> None:
    """Every function that sends an email (``queue_email``, ``email_owners``) holds no text with an API
    path: a link to one in any email body, however it is built, fails here."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            calls = {
                node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
            }
            if not calls & SENDS_EMAIL or function.name in SENDS_EMAIL:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/api/" in node.value:
                    where = f"{path.relative_to(SRC)}:{node.lineno} in {function.name}"
                    found.append(f"{where}: {node.value!r}")
    assert not found, "emails must link to dashboard pages:\n" + "\n".join(found)
