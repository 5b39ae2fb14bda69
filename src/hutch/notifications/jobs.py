"""Jobs of the notifications domain."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from hutch.db.jobs import JobContext, job
from hutch.i18n import use_language
from hutch.notifications.email_layout import branded_email
from hutch.notifications.gateway import Email
from hutch.notifications.repository import OutboundEmailRepository
from hutch.notifications.service import SEND_EMAIL_JOB

log = structlog.get_logger(__name__)


@job(SEND_EMAIL_JOB, queue="email")
async def send_email(ctx: JobContext, email_id: str) -> bool:
    """Send one outbox email; a sent one is skipped, so a retried job never sends twice."""
    email = await OutboundEmailRepository(ctx.uow.session).get_for_update(email_id)
    if email is None or email.sent_at is not None:
        return False
    body = ctx.resources.secret_box.decrypt(email.body_encrypted)
    with use_language(ctx.settings, email.language):  # the signature and HTML in the body's language
        branded = branded_email(email.subject, body, ctx.resources.brand, ctx.settings.base_url)
    await ctx.resources.email.send(
        Email(to=email.to_address, subject=email.subject, body=branded.text, html=branded.html)
    )
    email.sent_at = datetime.now(UTC)
    log.info("email sent", email_id=email.id, kind=email.kind)
    return True
