"""Delivering a new alert to the platform's admins, through every channel the operator set up."""

from __future__ import annotations

import httpx
import structlog

from hutch.admin.alerts import DELIVER_JOB, admin_emails, signed_headers, webhook_body
from hutch.admin.models import Alert
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.telegram.platform import platform_token
from hutch.notifications.service import queue_email
from hutch.worker import JobContext, job

log = structlog.get_logger(__name__)
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@job(DELIVER_JOB, queue="notifications", retry=5)
async def deliver_alert(ctx: JobContext, alert_id: str) -> list[str]:
    """Email every platform admin, post to the admin Telegram chat and the alert webhook; which were used.
    A channel that fails fails the job, which is retried (emails are queued once, in this transaction)."""
    alert = await ctx.uow.session.get(Alert, alert_id)
    if alert is None:
        return []
    settings = ctx.settings
    text = f"[{alert.severity.value.upper()}] {alert.subject}\n{alert.message}"
    used = []
    if ctx.attempt == 0:  # emails go through the outbox, which retries on its own
        for address in await admin_emails(ctx.uow):
            queue_email(
                ctx.uow, ctx.resources.secret_box, to=address, subject=f"Hutch alert: {alert.subject}",
                body=text, kind="admin_alert",
            )  # fmt: skip
            used.append(f"email:{address}")
    token = platform_token(settings)
    if settings.admin_telegram_chat_id and token:
        await TelegramGateway(settings.telegram_api_base).send(token, settings.admin_telegram_chat_id, text)
        used.append("telegram")
    if settings.admin_webhook_url and settings.admin_webhook_secret:
        body = webhook_body(alert)
        headers = signed_headers(settings.admin_webhook_secret.get_secret_value(), body)
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
            answer = await client.post(settings.admin_webhook_url, content=body, headers=headers)
        answer.raise_for_status()
        used.append("webhook")
    if not used:
        log.warning("alert delivered nowhere: no platform admin and no admin channel", alert_id=alert.id)
    return used
