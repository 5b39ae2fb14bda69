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
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from hutch.accounts.models import User
from hutch.alerts.models import Alert, Severity
from hutch.core.ids import new_id
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
    stmt = insert(Alert).values(
        id=new_id("alr"),
        kind=kind,
        severity=severity,
        subject=subject[:200],
        message=message,
        dedup_key=dedup_key or kind,
        org_id=org_id,
        occurrences=1,
    )
    row: Any = (
        await uow.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Alert.dedup_key],
                index_where=text("acknowledged_at IS NULL"),
                set_={
                    "occurrences": Alert.occurrences + 1,
                    "last_seen_at": func.now(),
                    "message": stmt.excluded.message,
                },
            ).returning(Alert.id, literal_column("xmax = 0").label("inserted"))
        )
    ).one()
    if row.inserted:  # a new situation: tell the admins; a repeat only counts
        uow.defer(DELIVER_JOB, alert_id=row.id)


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
    stmt = select(User.email).where(User.is_platform_admin.is_(True)).order_by(User.email)
    return list((await uow.session.scalars(stmt)).all())
