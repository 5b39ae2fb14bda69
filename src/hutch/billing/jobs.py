"""Jobs of the billing domain: notices to org owners."""

from __future__ import annotations

from sqlalchemy import select

from hutch.accounts.models import Membership, Org, OrgRole, User
from hutch.billing.ledger import LOW_BALANCE_JOB
from hutch.billing.webhooks import PAYMENT_FAILED_JOB
from hutch.notifications.service import queue_email
from hutch.worker import JobContext, job


async def owner_emails(ctx: JobContext, org_id: str) -> list[str]:
    stmt = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role == OrgRole.OWNER)
        .order_by(User.email)
    )
    return list((await ctx.uow.session.scalars(stmt)).all())


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@job(LOW_BALANCE_JOB, queue="email")
async def notify_low_balance(ctx: JobContext, org_id: str, credits_cents: int) -> int:
    """Tell the org's owners their prepaid credits fell below the threshold (once per crossing)."""
    org = await ctx.uow.session.get(Org, org_id)
    if org is None:
        return 0
    recipients = await owner_emails(ctx, org_id)
    base = (ctx.settings.public_url or f"http://{ctx.settings.host}:{ctx.settings.port}").rstrip("/")
    for address in recipients:
        queue_email(
            ctx.uow,
            ctx.resources.secret_box,
            to=address,
            subject=f"{org.name}: prepaid credits are running low",
            body=(
                f"Hello,\n\n{org.name} has {money(credits_cents)} of prepaid credits left. When they run "
                "out, answers that are charged to credits stop.\n\n"
                f"Prepaid packages: {base}/api/v1/billing/packages\n"
            ),
            kind="low_balance",
        )
    return len(recipients)


@job(PAYMENT_FAILED_JOB, queue="email")
async def notify_payment_failed(
    ctx: JobContext, org_id: str, amount_cents: int, invoice_url: str | None = None
) -> int:
    """Tell the org's owners a subscription payment failed, and how to fix it."""
    org = await ctx.uow.session.get(Org, org_id)
    if org is None:
        return 0
    recipients = await owner_emails(ctx, org_id)
    pay = f"Pay the invoice: {invoice_url}\n" if invoice_url else ""
    for address in recipients:
        queue_email(
            ctx.uow,
            ctx.resources.secret_box,
            to=address,
            subject=f"{org.name}: a payment failed",
            body=(
                f"Hello,\n\nThe payment of {money(amount_cents)} for {org.name}'s subscription failed. "
                "Stripe will try again; update the card in the billing portal "
                "(POST /api/v1/billing/portal) to keep the plan.\n" + pay
            ),
            kind="payment_failed",
        )
    return len(recipients)
