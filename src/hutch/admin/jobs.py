"""Delivering a new alert to the platform's admins, through every channel the operator set up."""

from __future__ import annotations

import httpx
import structlog

from hutch.admin.analytics import Range, margin
from hutch.alerts.models import Alert, Severity
from hutch.alerts.service import DELIVER_JOB, admin_emails, raise_alert, signed_headers, webhook_body
from hutch.channels.telegram.platform import platform_token
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.notifications.service import queue_email

log = structlog.get_logger(__name__)
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MARGIN_DAYS = 7


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
            subject = f"{ctx.resources.brand.name} alert: {alert.subject}"
            queue_email(
                ctx.uow, ctx.resources.secret_box, to=address, subject=subject, body=text, kind="admin_alert"
            )
            used.append(f"email:{address}")
    token = platform_token(settings)
    if settings.admin_telegram_chat_id and token:
        await ctx.resources.telegram.send(token, settings.admin_telegram_chat_id, text)
        used.append("telegram")
    if settings.admin_webhook_url and settings.admin_webhook_secret:
        body = webhook_body(alert)
        headers = signed_headers(settings.admin_webhook_secret.get_secret_value(), body)
        # Not through hutch.core.egress: only the operator sets this URL, and it is often on their own
        # network (an Alertmanager, a chat bridge). Redirects are not followed, so it is the only place
        # the request goes.
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client:
            answer = await client.post(settings.admin_webhook_url, content=body, headers=headers)
        answer.raise_for_status()
        used.append("webhook")
    if not used:
        log.warning("alert delivered nowhere: no platform admin and no admin channel", alert_id=alert.id)
    return used


@job("admin.check_margins", cron="30 3 * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def check_margins(ctx: JobContext, timestamp: int = 0) -> int:
    """Every night: an alert for each organisation that cost more than it paid over the last 7 days."""
    span = Range.of(MARGIN_DAYS, None, None, "UTC")
    report = await margin(ctx.uow.session, ctx.settings, span, limit=10_000)
    losing = [row for row in report["orgs"] if row["margin_cents"] < 0]
    for row in losing:
        await raise_alert(
            ctx.uow,
            "negative_margin",
            Severity.WARNING,
            f"{row['name'] or row['org_id']} cost more than it paid over {MARGIN_DAYS} days",
            f"Revenue {row['revenue_cents']} cents; costs: models {row['model_cost_cents']}, runtimes "
            f"{row['runtime_cost_cents']}, messaging {row['messaging_cost_cents']} (cents).",
            dedup_key=f"negative_margin:{row['org_id']}",
            org_id=row["org_id"],
        )
    return len(losing)
