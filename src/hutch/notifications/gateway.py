"""Sending email: SMTP from ``HUTCH_SMTP_URL``, or the console in development when none is configured."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import structlog

from hutch.core.brand import Brand
from hutch.settings import Settings

log = structlog.get_logger(__name__)

SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str  # the plain-text version
    html: str | None = None  # the HTML version, sent alongside the text


class EmailNotSent(Exception):
    """The message could not be handed over; the job retries it."""


class EmailGateway(Protocol):
    async def send(self, email: Email) -> None:
        """Hand the message to the mail system or raise :class:`EmailNotSent`."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # implicit TLS (smtps://, usually port 465)
    start_tls: bool | None  # None: upgrade when the server offers it

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """``smtp://user:pass@host:587`` (STARTTLS when offered), ``smtps://...:465`` (TLS),
        ``smtp://host:25?starttls=false`` (plain, e.g. a local relay)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must look like smtp://user:password@host:587 or smtps://host:465")
        query = parse_qs(parts.query)
        starttls_raw = query.get("starttls", [""])[0].lower()
        start_tls = {"true": True, "1": True, "false": False, "0": False}.get(starttls_raw)
        use_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=False if use_tls else start_tls,
        )


class SmtpEmailGateway:
    """Sends through an SMTP server with aiosmtplib."""

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender

    async def send(self, email: Email) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message.set_content(email.body)
        if email.html is not None:
            message.add_alternative(email.html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username,
                password=self.config.password,
                use_tls=self.config.use_tls,
                start_tls=self.config.start_tls,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # aiosmtplib's messages name the server and its reply, never our credentials.
            raise EmailNotSent(f"SMTP {self.config.host}:{self.config.port}: {exc}") from None


class ConsoleEmailGateway:
    """Development without SMTP: print the whole message (links included) where the operator sees it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, email: Email) -> None:
        stream = self.stream or sys.stderr
        rule = "-" * 72
        stream.write(f"\n{rule}\nEmail to {email.to}: {email.subject}\n{rule}\n{email.body}\n{rule}\n")
        stream.flush()
        log.info("email printed to the console (no HUTCH_SMTP_URL)", to=email.to, subject=email.subject)


class UnconfiguredEmailGateway:
    """Production without SMTP: emails stay in the outbox, failing loudly, until SMTP is configured."""

    async def send(self, email: Email) -> None:
        raise EmailNotSent("HUTCH_SMTP_URL is not set; configure SMTP to deliver email")


def build_email_gateway(settings: Settings, brand: Brand | None = None) -> EmailGateway:
    """The gateway from settings; emails come from the brand's sender (``HUTCH_EMAIL_FROM`` or its name)."""
    if settings.smtp_url is not None:
        sender = brand.sender if brand is not None else settings.sender
        return SmtpEmailGateway(SmtpConfig.from_url(settings.smtp_url.get_secret_value()), sender)
    if settings.is_production:
        return UnconfiguredEmailGateway()
    return ConsoleEmailGateway()
