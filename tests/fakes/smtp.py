"""A real SMTP server (aiosmtpd) on loopback keeping what it receives, to read emails in tests."""

from __future__ import annotations

import email
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# aiosmtpd logs every DATA line at debug level: the mail server's own log, not Hutch's, and it would put the
# emailed tokens (quoted-printable, past any redaction) in the logs the suite scans for secrets.
logging.getLogger("mail.log").setLevel(logging.INFO)


@dataclass(frozen=True)
class ReceivedEmail:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        """As the reader sees it: encoded words (non-ASCII subjects, RFC 2047) decoded."""
        return str(make_header(decode_header(str(self.message["Subject"]))))

    def _part(self, content_type: str) -> str | None:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode(part.get_content_charset() or "utf-8")
        return None

    @property
    def body(self) -> str:
        """The plain-text version."""
        text = self._part("text/plain")
        return text if text is not None else str(self.message.get_payload())

    @property
    def html(self) -> str | None:
        """The HTML version, when the email has one."""
        return self._part("text/html")

    def link(self, path: str) -> str:
        """The first URL in the body whose path starts with ``path``."""
        found = re.search(rf"https?://[^\s/]+{re.escape(path)}[^\s]*", self.body)
        assert found is not None, f"no {path} link in: {self.body}"
        return found.group(0)

    def token(self) -> str:
        found = re.search(r"[?&]token=([A-Za-z0-9_-]+)", self.body)
        assert found is not None, f"no token in: {self.body}"
        return found.group(1)


class _Collector:
    def __init__(self) -> None:
        self.received: list[ReceivedEmail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        with self.lock:
            self.received.append(
                ReceivedEmail(
                    sender=str(envelope.mail_from),
                    recipients=list(envelope.rcpt_tos),
                    message=email.message_from_bytes(content),
                )
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self._collector = _Collector()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def reset(self) -> None:
        with self._collector.lock:
            self._collector.received.clear()

    def messages(self, to: str | None = None) -> list[ReceivedEmail]:
        with self._collector.lock:
            return [m for m in self._collector.received if to is None or to in m.recipients]

    def wait_for(self, to: str, count: int = 1, timeout: float = 5) -> list[ReceivedEmail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(to)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} email(s) to {to}, got {len(self.messages(to))}")
