"""What the admin console shows: platform totals and lists of users, organisations and agents.

Every number is counted in SQL (a row per answer, never whole tables in Python); lists page with
``skip``/``limit``, give their ``total``, and search by name or email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.admin.queries import ConsoleQueries
from hutch.alerts.models import Alert
from hutch.billing.models import SubscriptionStatus
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.core.errors import NotFound
from hutch.core.quota import month_start
from hutch.settings import Settings


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


class AdminConsole:
    def __init__(self, session: AsyncSession, plans: PlanCatalog, settings: Settings) -> None:
        self.session = session
        self.queries = ConsoleQueries(session)
        self.plans = plans
        self.settings = settings

    async def stats(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        totals = await self.queries.totals()
        for days in (7, 30):
            totals[f"active_users_{days}d"] = await self.queries.users_active_since(
                now - timedelta(days=days)
            )
        subscriptions = await self.queries.subscriptions_by_status()
        billed = await self.queries.billed_by_plan()
        mrr = 0
        for plan_id, count in billed:
            plan = self.plans.plan(plan_id or "")
            if plan is not None:
                mrr += count * (plan.price_cents // 12 if plan.interval == "year" else plan.price_cents)
        users_by_plan = await self.queries.users_by_plan()
        runtimes = await self.queries.runtimes_by_status()
        return {
            **totals,
            "mrr_cents": mrr,
            "subscriptions": {s.value: int(subscriptions.get(s, 0)) for s in SubscriptionStatus},
            "users_by_plan": {str(k): int(v) for k, v in users_by_plan.items()},
            "runtimes_by_status": {str(k.value): int(v) for k, v in runtimes.items()},
        }

    async def users(
        self, q: str | None, skip: int, limit: int, sort: str = "newest", now: datetime | None = None
    ) -> Page:
        month = month_start(now or datetime.now(UTC))
        rows, total = await self.queries.users(q, skip, limit, sort, month)
        return Page(
            [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "is_platform_admin": u.is_platform_admin,
                    "plan": p,
                    "orgs": o,
                    "agents": a,
                    "messages_this_month": int(m),
                    "created_at": u.created_at,
                    "last_active_at": u.last_active_at,
                    "suspended_at": u.suspended_at,
                    "suspension_reason": u.suspension_reason,
                }
                for u, o, a, m, p in rows
            ],
            total,
        )

    async def orgs(
        self, q: str | None, skip: int, limit: int, sort: str = "newest", now: datetime | None = None
    ) -> Page:
        month = month_start(now or datetime.now(UTC))
        rows, total = await self.queries.orgs(q, skip, limit, sort, month)
        return Page(
            [
                {
                    "id": o.id,
                    "name": o.name,
                    "plan": o.plan,
                    "subscription": (status or SubscriptionStatus.NONE).value,
                    "members": mem,
                    "agents": ag,
                    "messages_this_month": int(msg),
                    "credits_cents": int(credits or 0),
                    "seconds": int(seconds or 0),
                    "created_at": o.created_at,
                    "suspended_at": o.suspended_at,
                    "suspension_reason": o.suspension_reason,
                }
                for o, mem, ag, msg, status, credits, seconds in rows
            ],
            total,
        )

    async def agents(self, q: str | None, skip: int, limit: int, sort: str = "newest") -> Page:
        rows, total = await self.queries.agents(q, skip, limit, sort)
        return Page(
            [
                {
                    "id": a.id,
                    "name": a.name,
                    "org_id": a.org_id,
                    "org_name": org_name,
                    "role": a.role,
                    "model": a.model,
                    "status": a.status.value,
                    "placement": a.placement.value,
                    "conversations": conv,
                    "memories": mem,
                    "documents": docs,
                    "channels": chans,
                    "created_at": a.created_at,
                }
                for a, org_name, conv, mem, docs, chans in rows
            ],
            total,
        )

    async def org_report(self, org_id: str) -> dict[str, Any]:
        """One organisation: its list row, members, agents, this month's usage and a year of revenue."""
        page = await self.orgs(org_id, 0, 1)
        if not page.items or page.items[0]["id"] != org_id:
            raise NotFound("Organisation")
        members = await self.queries.members_of(org_id)
        agents = await self.queries.agents_of(org_id)
        year = datetime.now(UTC) - timedelta(days=365)
        revenue = await self.queries.revenue_since(org_id, year)
        return {
            **page.items[0],
            "members": [{"user_id": u, "email": e, "role": r.value} for u, e, r in members],
            "agents": [
                {"id": i, "name": n, "status": st.value, "placement": pl.value} for i, n, st, pl in agents
            ],
            "usage_this_month": await Quotas(self.session, self.plans).usage(org_id),
            "revenue_cents_last_365_days": revenue,
        }

    async def user_report(self, user_id: str) -> dict[str, Any]:
        """One user: their list row and every organisation they belong to, with their role there."""
        found = await self.queries.user(user_id)
        if found is None:
            raise NotFound("User")
        page = await self.users(found.email, 0, 1)
        orgs = await self.queries.memberships_of(user_id)
        return {
            **page.items[0],
            "memberships": [{"org_id": i, "name": n, "plan": p, "role": r.value} for i, n, p, r in orgs],
        }

    async def alerts(self, open_only: bool, skip: int, limit: int) -> Page:
        alerts, total = await self.queries.alerts(open_only, skip, limit)
        return Page([alert_out(alert) for alert in alerts], total)

    async def acknowledge(self, alert_id: str) -> dict[str, Any]:
        alert = await self.queries.alert_for_update(alert_id)
        if alert is None:
            raise NotFound("Alert")
        if alert.acknowledged_at is None:
            alert.acknowledged_at = datetime.now(UTC)
            await self.session.flush()
        return alert_out(alert)


def alert_out(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "message": alert.message,
        "org_id": alert.org_id,
        "occurrences": alert.occurrences,
        "created_at": alert.created_at,
        "last_seen_at": alert.last_seen_at,
        "acknowledged_at": alert.acknowledged_at,
    }
