"""Jobs of the billing domain: notices to org owners (email, and their linked chats)."""

from __future__ import annotations

from collections.abc import Callable

from hutch.accounts.models import Org
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.ledger import LOW_BALANCE_JOB
from hutch.billing.quotas import QUOTA_NOTICE_JOB, Quotas
from hutch.billing.webhooks import PAYMENT_FAILED_JOB
from hutch.db.jobs import JobContext, job
from hutch.notifications.customers import NOTIFY_CHATS_JOB, owners, record
from hutch.notifications.service import queue_email

# Where customers act on a notice: pages of the dashboard, never the API's paths.
BILLING_PAGE = "/app/billing"
PREFERENCES_PAGE = "/app/settings/notifications"


async def email_owners(
    ctx: JobContext,
    org_id: str,
    kind: str,
    compose: Callable[[str], tuple[str, str]],
    chat: str | None = None,
) -> int:
    """Queue the (subject, body) ``compose`` makes from the org's name to each owner who takes email, and
    (with ``chat``) tell the owners' linked chats too; each sent notice is recorded. How many emails."""
    org = await ctx.uow.session.get(Org, org_id)
    if org is None:
        return 0
    subject, body = compose(org.name)
    emailed = 0
    product = ctx.resources.brand.name
    body += f"\nChoose how {product} tells you about {org.name}: {ctx.settings.base_url}{PREFERENCES_PAGE}\n"
    for owner in await owners(ctx.uow, org_id, kind):
        if owner.wants_email:
            queue_email(
                ctx.uow, ctx.resources.secret_box, to=owner.email, subject=subject, body=body, kind=kind
            )
            record(ctx.uow, org_id, owner.user_id, kind, "email", subject)
            emailed += 1
    if chat:
        ctx.uow.defer(NOTIFY_CHATS_JOB, org_id=org_id, text=chat, kind=kind)
    return emailed


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@job(LOW_BALANCE_JOB, queue="email")
async def notify_low_balance(ctx: JobContext, org_id: str, credits_cents: int) -> int:
    """Tell the org's owners their prepaid credits fell below the threshold (once per crossing)."""
    packages = f"{ctx.settings.base_url}{BILLING_PAGE}"
    return await email_owners(
        ctx,
        org_id,
        "low_balance",
        lambda org: (
            f"{org}: prepaid credits are running low",
            f"Hello,\n\n{org} has {money(credits_cents)} of prepaid credits left. When they run out, "
            f"answers that are charged to credits stop.\n\nBuy a prepaid package: {packages}\n",
        ),
        chat=f"Your prepaid credits are running low: {money(credits_cents)} left. {packages}",
    )


@job(PAYMENT_FAILED_JOB, queue="email")
async def notify_payment_failed(
    ctx: JobContext, org_id: str, amount_cents: int, invoice_url: str | None = None
) -> int:
    """Tell the org's owners a subscription payment failed, and how to fix it (and the admins, once per org
    until they acknowledge it)."""
    await raise_alert(
        ctx.uow,
        "payment_failed",
        Severity.WARNING,
        "A subscription payment failed",
        f"Organisation {org_id}: a payment of {money(amount_cents)} failed; Stripe retries it.",
        dedup_key=f"payment_failed:{org_id}",
        org_id=org_id,
    )
    pay = f"Pay the invoice: {invoice_url}\n" if invoice_url else ""
    billing = f"{ctx.settings.base_url}{BILLING_PAGE}"
    return await email_owners(
        ctx,
        org_id,
        "payment_failed",
        lambda org: (
            f"{org}: a payment failed",
            f"Hello,\n\nThe payment of {money(amount_cents)} for {org}'s subscription failed. Stripe will "
            f"try again; update the card in the billing portal to keep the plan: {billing}\n" + pay,
        ),
        chat=f"A payment of {money(amount_cents)} for your subscription failed; please update your card: "
        f"{billing}",
    )


@job(QUOTA_NOTICE_JOB, queue="email")
async def notify_quota(ctx: JobContext, org_id: str, percent: int) -> int:
    """Tell the org's owners their plan's monthly messages are 80% used, or all used."""
    plan = await Quotas(ctx.uow.session, ctx.resources.plans).plan_of(org_id)
    limit = plan.limits.messages_per_month
    upgrade = f"{ctx.settings.base_url}{BILLING_PAGE}"
    if percent >= 100:
        headline = f"all {limit} messages of the {plan.name} plan are used this month"
        advice = "Agents answer again next month, or now with a bigger plan"
    else:
        headline = f"{percent}% of the {plan.name} plan's {limit} messages are used this month"
        advice = "When they are all used, agents stop answering until next month; a bigger plan avoids it"
    return await email_owners(
        ctx,
        org_id,
        f"quota_{percent}",
        lambda org: (f"{org}: {headline}", f"Hello,\n\nFor {org}, {headline}. {advice}: {upgrade}\n"),
        chat=f"Heads up: {headline}. {upgrade}",
    )
