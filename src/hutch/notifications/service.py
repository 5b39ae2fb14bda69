"""Queue emails: store them in the outbox (encrypted) and send them from a job after commit."""

from __future__ import annotations

from hutch.core.ids import new_id
from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork
from hutch.i18n import current_language
from hutch.notifications.models import OutboundEmail
from hutch.notifications.repository import OutboundEmailRepository

SEND_EMAIL_JOB = "notifications.send_email"


def queue_email(
    uow: UnitOfWork, secret_box: SecretBox, *, to: str, subject: str, body: str, kind: str
) -> str:
    """Store the email in this transaction; it is sent once the transaction commits."""
    email = OutboundEmail(
        id=new_id("eml"),
        to_address=to,
        subject=subject,
        body_encrypted=secret_box.encrypt(body),
        kind=kind,
        language=current_language(),  # what the body was written in (hutch.i18n.use_language)
    )
    OutboundEmailRepository(uow.session).add(email)
    uow.defer(SEND_EMAIL_JOB, email_id=email.id)
    return email.id
