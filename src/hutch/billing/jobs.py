"""Jobs of the billing domain: notices to org owners (email, and their linked chats)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hutch.accounts.models import Org
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.holds import SpendHolds
from hutch.billing.ledger import LOW_BALANCE_JOB
from hutch.billing.quotas import QUOTA_NOTICE_JOB, Quotas
from hutch.billing.webhooks import PAYMENT_FAILED_JOB
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.i18n import _, use_language
from hutch.notifications.customers import NOTIFY_CHATS_JOB, in_each_language, owners, record
from hutch.notifications.service import queue_email

# Where customers act on a notice: pages of the dashboard, never the API's paths.
BILLING_PAGE = "/app/billing"
PREFERENCES_PAGE = "/app/settings/notifications"


async def email_owners(
    ctx: JobContext,
    org_id: str,
    kind: str,
    compose: Callable[[str], tuple[str, str]],
    chat: Callable[[], str] | None = None,
) -> int:
    """Queue the (subject, body) ``compose`` makes from the org's name to each owner who takes email, in
    their language, and (with ``chat``) tell the owners' linked chats too; each sent notice is recorded. How
    many emails."""
    org = await ctx.uow.session.get(Org, org_id)
    if org is None:
        return 0
    emailed = 0
    product = ctx.resources.brand.name
    preferences = f"{ctx.settings.base_url}{PREFERENCES_PAGE}"
    for owner in await owners(ctx.uow, org_id, kind):
        if owner.wants_email:
            with use_language(ctx.settings, owner.language):
                subject, body = compose(org.name)
                body += "\n" + _("Choose how {product} tells you about {org}: {link}").format(
                    product=product, org=org.name, link=preferences
                )
                body += "\n"
            queue_email(
                ctx.uow, ctx.resources.secret_box, to=owner.email, subject=subject, body=body, kind=kind
            )
            record(ctx.uow, org_id, owner.user_id, kind, "email", subject)
            emailed += 1
    if chat is not None:  # said in each owner's language by the job
        texts = in_each_language(ctx.settings, chat)
        ctx.uow.defer(NOTIFY_CHATS_JOB, org_id=org_id, text=chat(), kind=kind, texts=texts)
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
            _("{org}: prepaid credits are running low").format(org=org),
            _("Hello,")
            + "\n\n"
            + _(
                "{org} has {amount} of prepaid credits left. When they run out, answers that are charged to "
                "credits stop."
            ).format(org=org, amount=money(credits_cents))
            + "\n\n"
            + _("Buy a prepaid package: {link}").format(link=packages)
            + "\n",
        ),
        chat=lambda: _("Your prepaid credits are running low: {amount} left. {link}").format(
            amount=money(credits_cents), link=packages
        ),
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
    billing = f"{ctx.settings.base_url}{BILLING_PAGE}"

    def pay() -> str:
        return _("Pay the invoice: {link}").format(link=invoice_url) + "\n" if invoice_url else ""

    return await email_owners(
        ctx,
        org_id,
        "payment_failed",
        lambda org: (
            _("{org}: a payment failed").format(org=org),
            _("Hello,")
            + "\n\n"
            + _(
                "The payment of {amount} for {org}'s subscription failed. Stripe will try again; update the "
                "card in the billing portal to keep the plan: {link}"
            ).format(amount=money(amount_cents), org=org, link=billing)
            + "\n"
            + pay(),
        ),
        chat=lambda: _(
            "A payment of {amount} for your subscription failed; please update your card: {link}"
        ).format(amount=money(amount_cents), link=billing),
    )


@job(QUOTA_NOTICE_JOB, queue="email")
async def notify_quota(ctx: JobContext, org_id: str, percent: int) -> int:
    """Tell the org's owners their plan's monthly messages are 80% used, or all used."""
    plan = await Quotas(ctx.uow.session, ctx.resources.plans).plan_of(org_id)
    limit = plan.limits.messages_per_month
    upgrade = f"{ctx.settings.base_url}{BILLING_PAGE}"

    def headline() -> str:
        if percent >= 100:
            return _("all {limit} messages of the {plan} plan are used this month").format(
                limit=limit, plan=plan.name
            )
        return _("{percent}% of the {plan} plan's {limit} messages are used this month").format(
            percent=percent, plan=plan.name, limit=limit
        )

    def advice() -> str:
        if percent >= 100:
            return _("Agents answer again next month, or now with a bigger plan")
        return _("When they are all used, agents stop answering until next month; a bigger plan avoids it")

    return await email_owners(
        ctx,
        org_id,
        f"quota_{percent}",
        lambda org: (
            f"{org}: {headline()}",
            _("Hello,")
            + "\n\n"
            + _("For {org}, {headline}. {advice}: {link}").format(
                org=org, headline=headline(), advice=advice(), link=upgrade
            )
            + "\n",
        ),
        chat=lambda: _("Heads up: {headline}. {link}").format(headline=headline(), link=upgrade),
    )


@job("billing.purge_expired_holds", cron="41 * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def purge_expired_holds(ctx: JobContext, timestamp: int) -> int:
    """Every hour: delete the spend holds of turns that never finished (they stopped counting when they
    expired); how many."""
    return await SpendHolds(ctx.uow.session).purge_expired(datetime.now(UTC))
