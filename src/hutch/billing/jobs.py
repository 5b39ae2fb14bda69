"""Jobs of the billing domain: notices to org owners."""

from __future__ import annotations

from collections.abc import Callable

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


async def email_owners(
    ctx: JobContext, org_id: str, kind: str, compose: Callable[[str], tuple[str, str]]
) -> int:
    """Queue the (subject, body) ``compose`` makes from the org's name to each owner; how many got it."""
    org = await ctx.uow.session.get(Org, org_id)
    if org is None:
        return 0
    subject, body = compose(org.name)
    recipients = await owner_emails(ctx, org_id)
    for address in recipients:
        queue_email(ctx.uow, ctx.resources.secret_box, to=address, subject=subject, body=body, kind=kind)
    return len(recipients)


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@job(LOW_BALANCE_JOB, queue="email")
async def notify_low_balance(ctx: JobContext, org_id: str, credits_cents: int) -> int:
    """Tell the org's owners their prepaid credits fell below the threshold (once per crossing)."""
    packages = f"{ctx.settings.base_url}/api/v1/billing/packages"
    return await email_owners(
        ctx,
        org_id,
        "low_balance",
        lambda org: (
            f"{org}: prepaid credits are running low",
            f"Hello,\n\n{org} has {money(credits_cents)} of prepaid credits left. When they run out, "
            f"answers that are charged to credits stop.\n\nPrepaid packages: {packages}\n",
        ),
    )


@job(PAYMENT_FAILED_JOB, queue="email")
async def notify_payment_failed(
    ctx: JobContext, org_id: str, amount_cents: int, invoice_url: str | None = None
) -> int:
    """Tell the org's owners a subscription payment failed, and how to fix it."""
    pay = f"Pay the invoice: {invoice_url}\n" if invoice_url else ""
    return await email_owners(
        ctx,
        org_id,
        "payment_failed",
        lambda org: (
            f"{org}: a payment failed",
            f"Hello,\n\nThe payment of {money(amount_cents)} for {org}'s subscription failed. Stripe will "
            "try again; update the card in the billing portal (POST /api/v1/billing/portal) to keep the "
            "plan.\n" + pay,
        ),
    )
