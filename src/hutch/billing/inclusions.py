"""What an org's plan includes, as billing sees it: whether its subscription lets the included things run,
and the one call by which billing hands a change to the provisioning flow (``hutch.provisioning.flow``).

The flow builds on runtimes and channels, which build on billing, so billing reaches it by the name of its
job: deferred in the transaction that changed the subscription or the plan, it runs once that commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hutch.billing.models import BillingAccount, SubscriptionStatus
from hutch.billing.plans import BillingSettings
from hutch.db.engine import UnitOfWork
from hutch.i18n import N_

FOLLOW_PLAN_JOB = "provisioning.follow_plan"
# Why included things stop: stored as the reason, and told to the owners in their language.
ENDED = N_("the subscription ended")
UNPAID = N_("the subscription's payment is past due")


def follow_plan(uow: UnitOfWork, org_id: str) -> None:
    """Provision, suspend or resume what the org's plan includes, after this transaction commits."""
    uow.defer(FOLLOW_PLAN_JOB, org_id=org_id)


def unpaid_past_grace(account: BillingAccount, billing: BillingSettings, now: datetime) -> bool:
    """Past due for longer than the plans file's ``past_due_grace_hours``."""
    if account.status is not SubscriptionStatus.PAST_DUE:
        return False
    since = account.past_due_since or account.stripe_state_at or account.created_at
    return now - since >= timedelta(hours=billing.past_due_grace_hours)


def entitlement(account: BillingAccount | None, billing: BillingSettings, now: datetime) -> str | None:
    """Why the org's included things must stop (the subscription ended, or stayed unpaid past the grace
    period), or None while they may run: a live subscription, a trial, or a plan an admin assigned."""
    if account is None:
        return None
    if account.status is SubscriptionStatus.CANCELED:
        return ENDED
    if unpaid_past_grace(account, billing, now):
        return UNPAID
    return None
