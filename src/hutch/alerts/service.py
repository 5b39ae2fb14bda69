"""Raising an alert for the platform's admins, once per situation until someone acknowledges it.

A new alert is delivered to the admins by a job: by email to every platform admin, to the Telegram admin
chat (``HUTCH_ADMIN_TELEGRAM_CHAT_ID``, through the operator's bot) and to an outgoing webhook
(``HUTCH_ADMIN_WEBHOOK_URL``, signed with HMAC-SHA256 of ``HUTCH_ADMIN_WEBHOOK_SECRET``), whichever are set.
Raising it again while it is open only counts an occurrence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from hutch.alerts.models import Alert, Severity
from hutch.alerts.repository import AlertRepository
from hutch.db.engine import UnitOfWork

DELIVER_JOB = "admin.deliver_alert"
SIGNATURE_HEADER = "X-Hutch-Signature"


async def raise_alert(
    uow: UnitOfWork,
    kind: str,
    severity: Severity,
    subject: str,
    message: str,
    *,
    dedup_key: str | None = None,
    org_id: str | None = None,
) -> None:
    """Record an alert; while an alert with the same key is unacknowledged, count one more occurrence."""
    alert_id, inserted = await AlertRepository(uow.session).record(
        kind, severity, subject[:200], message, dedup_key or kind, org_id
    )
    if inserted:  # a new situation: tell the admins; a repeat only counts
        uow.defer(DELIVER_JOB, alert_id=alert_id)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<time>.<body>">``: the receiver recomputes and compares, and
    refuses old timestamps."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_body(alert: Alert) -> bytes:
    return json.dumps(
        {
            "id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity.value,
            "subject": alert.subject,
            "message": alert.message,
            "org_id": alert.org_id,
            "created_at": alert.created_at.isoformat(),
        }
    ).encode()


def signed_headers(secret: str, body: bytes, now: int | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, now if now is not None else int(time.time()), body),
    }


async def admin_emails(uow: UnitOfWork) -> list[str]:
    return await AlertRepository(uow.session).admin_emails()
