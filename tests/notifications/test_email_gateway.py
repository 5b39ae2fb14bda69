"""Email delivery: the SMTP URL forms, the console in development, the outbox job's retries."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork
from hutch.notifications.gateway import (
    ConsoleEmailGateway,
    Email,
    EmailNotSent,
    SmtpConfig,
    SmtpEmailGateway,
    UnconfiguredEmailGateway,
    build_email_gateway,
)
from hutch.notifications.models import OutboundEmail
from hutch.notifications.service import queue_email
from hutch.resources import Resources
from hutch.settings import Environment, Settings
from tests.conftest import RecordingJobQueue
from tests.fakes.smtp import SmtpServer


def test_smtp_urls_cover_starttls_tls_and_plain_relays() -> None:
    submission = SmtpConfig.from_url("smtp://mailer%40acme.io:p%40ss@smtp.acme.io")
    assert (submission.host, submission.port, submission.use_tls, submission.start_tls) == (
        "smtp.acme.io",
        587,
        False,
        None,
    )
    assert (submission.username, submission.password) == ("mailer@acme.io", "p@ss")
    tls = SmtpConfig.from_url("smtps://u:p@smtp.acme.io")
    assert (tls.port, tls.use_tls, tls.start_tls) == (465, True, False)
    relay = SmtpConfig.from_url("smtp://localhost:25?starttls=false")
    assert (relay.port, relay.start_tls, relay.username) == (25, False, None)
    with pytest.raises(ValueError):
        SmtpConfig.from_url("http://smtp.acme.io")


async def test_smtp_gateway_delivers_with_the_configured_sender(smtp_server: SmtpServer) -> None:
    smtp_server.reset()
    gateway = SmtpEmailGateway(SmtpConfig.from_url(smtp_server.url), "Acme <hello@acme.example>")
    await gateway.send(Email(to="zoe@example.com", subject="Hello", body="Line one\nLine two"))
    [received] = smtp_server.wait_for("zoe@example.com")
    assert received.message["From"] == "Acme <hello@acme.example>"
    assert received.subject == "Hello" and "Line two" in received.body


async def test_unreachable_smtp_raises_a_retryable_error_without_the_password() -> None:
    gateway = SmtpEmailGateway(
        SmtpConfig.from_url("smtp://user:hunter22@127.0.0.1:9?starttls=false"), "a@b.c"
    )
    with pytest.raises(EmailNotSent) as raised:
        await gateway.send(Email(to="x@example.com", subject="s", body="b"))
    assert "hunter22" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)


async def test_development_without_smtp_prints_the_message_and_production_refuses(settings: Settings) -> None:
    dev = settings.model_copy(update={"smtp_url": None, "env": Environment.DEVELOPMENT})
    assert isinstance(build_email_gateway(dev), ConsoleEmailGateway)
    stream = io.StringIO()
    await ConsoleEmailGateway(stream).send(
        Email(to="dev@example.com", subject="Confirm", body="https://x/verify-email?token=abc")
    )
    assert "dev@example.com" in stream.getvalue() and "token=abc" in stream.getvalue()
    prod = settings.model_copy(update={"smtp_url": None, "env": Environment.PRODUCTION})
    gateway = build_email_gateway(prod)
    assert isinstance(gateway, UnconfiguredEmailGateway)
    with pytest.raises(EmailNotSent, match="HUTCH_SMTP_URL"):
        await gateway.send(Email(to="a@b.c", subject="s", body="b"))


async def test_the_send_job_is_safe_to_run_twice(
    session: AsyncSession, resources: Resources, jobs: RecordingJobQueue, mailbox: SmtpServer
) -> None:
    uow = UnitOfWork(session, jobs)
    box: SecretBox = resources.secret_box
    email_id = queue_email(uow, box, to="once@example.com", subject="Once", body="secret link", kind="test")
    await uow.checkpoint()
    [(name, kwargs)] = list(jobs.deferred)
    assert kwargs == {"email_id": email_id}  # ids only: the body never enters the job queue
    jobs.deferred.append((name, kwargs))  # delivered twice, as a retried job would be
    assert await jobs.run_pending() == [True, False]
    assert len(mailbox.wait_for("once@example.com")) == 1
    stored = (await session.scalars(select(OutboundEmail).where(OutboundEmail.id == email_id))).one()
    assert "secret link" not in stored.body_encrypted and stored.sent_at is not None
