"""What the admin console shows: platform totals and lists of users, organisations and agents.

Every number is counted in SQL (a row per answer, never whole tables in Python); lists page with
``skip``/``limit``, give their ``total``, and search by name or email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, User
from hutch.agents.models import Agent
from hutch.alerts.models import Alert
from hutch.billing.models import Balance, BillingAccount, RevenueEvent, SubscriptionStatus, UsageMonthly
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.channels.models import Channel
from hutch.conversations.models import Conversation, Memory, Message
from hutch.core.errors import NotFound
from hutch.core.quota import month_start
from hutch.knowledge.models import Document
from hutch.runtimes.models import Runtime
from hutch.settings import Settings

BILLED = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)  # what MRR counts (trials pay nothing yet)


def _count(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.subquery())


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


class AdminConsole:
    def __init__(self, session: AsyncSession, plans: PlanCatalog, settings: Settings) -> None:
        self.session = session
        self.plans = plans
        self.settings = settings

    async def _scalar(self, stmt: Any) -> int:
        return int(await self.session.scalar(stmt) or 0)

    async def _page(
        self, stmt: Select[Any], order: tuple[Any, ...], skip: int, limit: int
    ) -> tuple[list[Any], int]:
        """One page of ``stmt`` in ``order`` (ids break ties), and how many rows there are in all."""
        total = await self._scalar(_count(stmt))
        rows = await self.session.execute(stmt.order_by(*order).offset(skip).limit(limit))
        return list(rows.all()), total

    async def stats(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        totals = {
            "users": await self._scalar(select(func.count()).select_from(User)),
            "orgs": await self._scalar(select(func.count()).select_from(Org)),
            "agents": await self._scalar(select(func.count()).select_from(Agent)),
            "conversations": await self._scalar(select(func.count()).select_from(Conversation)),
            "messages": await self._scalar(select(func.count()).select_from(Message)),
            "documents": await self._scalar(select(func.count()).select_from(Document)),
        }
        for days in (7, 30):
            totals[f"active_users_{days}d"] = await self._scalar(
                select(func.count()).where(User.last_active_at >= now - timedelta(days=days))
            )
        subscriptions = dict(
            (
                await self.session.execute(
                    select(BillingAccount.status, func.count()).group_by(BillingAccount.status)
                )
            ).all()
        )
        billed = (
            await self.session.execute(
                select(BillingAccount.subscribed_plan, func.count())
                .where(BillingAccount.status.in_(BILLED))
                .group_by(BillingAccount.subscribed_plan)
            )
        ).all()
        mrr = 0
        for plan_id, count in billed:
            plan = self.plans.plan(plan_id or "")
            if plan is not None:
                mrr += count * (plan.price_cents // 12 if plan.interval == "year" else plan.price_cents)
        users_by_plan = dict(
            (
                await self.session.execute(
                    select(Org.plan, func.count(func.distinct(Membership.user_id)))
                    .join(Membership, Membership.org_id == Org.id)
                    .group_by(Org.plan)
                )
            ).all()
        )
        runtimes = dict(
            (await self.session.execute(select(Runtime.status, func.count()).group_by(Runtime.status))).all()
        )
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
        orgs = (
            select(func.count(Membership.org_id))
            .where(Membership.user_id == User.id)
            .correlate(User)
            .scalar_subquery()
        )
        agents = (
            select(func.count(Agent.id))
            .join(Membership, Membership.org_id == Agent.org_id)
            .where(Membership.user_id == User.id)
            .correlate(User)
            .scalar_subquery()
        )
        messages = (
            select(func.coalesce(func.sum(UsageMonthly.messages), 0))
            .join(Membership, Membership.org_id == UsageMonthly.org_id)
            .where(Membership.user_id == User.id, UsageMonthly.month == month)
            .correlate(User)
            .scalar_subquery()
        )
        plan = (
            select(Org.plan)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == User.id)
            .order_by(Membership.created_at)
            .limit(1)
            .correlate(User)
            .scalar_subquery()
        )
        stmt = select(User, orgs, agents, messages, plan)
        if q:
            stmt = stmt.where(or_(User.email.ilike(f"%{q}%"), User.name.ilike(f"%{q}%")))
        order = {
            "newest": (User.created_at.desc(),),
            "email": (User.email,),
            "last_active": (User.last_active_at.desc().nulls_last(),),
            "messages": (messages.desc(),),
        }[sort]
        rows, total = await self._page(stmt, (*order, User.id), skip, limit)
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
                }
                for u, o, a, m, p in rows
            ],
            total,
        )

    async def orgs(
        self, q: str | None, skip: int, limit: int, sort: str = "newest", now: datetime | None = None
    ) -> Page:
        month = month_start(now or datetime.now(UTC))
        members = select(func.count()).where(Membership.org_id == Org.id).correlate(Org).scalar_subquery()
        agents = select(func.count()).where(Agent.org_id == Org.id).correlate(Org).scalar_subquery()
        messages = (
            select(func.coalesce(func.sum(UsageMonthly.messages), 0))
            .where(UsageMonthly.org_id == Org.id, UsageMonthly.month == month)
            .correlate(Org)
            .scalar_subquery()
        )
        stmt = (
            select(
                Org, members, agents, messages, BillingAccount.status, Balance.credits_cents, Balance.seconds
            )
            .outerjoin(BillingAccount, BillingAccount.org_id == Org.id)
            .outerjoin(Balance, Balance.org_id == Org.id)
        )
        if q:
            stmt = stmt.where(or_(Org.name.ilike(f"%{q}%"), Org.id == q))
        order = {
            "newest": (Org.created_at.desc(),),
            "name": (Org.name,),
            "members": (members.desc(),),
            "messages": (messages.desc(),),
        }[sort]
        rows, total = await self._page(stmt, (*order, Org.id), skip, limit)
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
                }
                for o, mem, ag, msg, status, credits, seconds in rows
            ],
            total,
        )

    async def agents(self, q: str | None, skip: int, limit: int, sort: str = "newest") -> Page:
        def per_agent(model: Any) -> Any:
            return select(func.count()).where(model.agent_id == Agent.id).correlate(Agent).scalar_subquery()

        stmt = select(
            Agent,
            Org.name,
            per_agent(Conversation),
            per_agent(Memory),
            per_agent(Document),
            per_agent(Channel),
        ).join(Org, Org.id == Agent.org_id)
        if q:
            stmt = stmt.where(
                or_(Agent.name.ilike(f"%{q}%"), Agent.slug == q.lower(), Org.name.ilike(f"%{q}%"))
            )
        conversations = per_agent(Conversation)
        order = {
            "newest": (Agent.created_at.desc(),),
            "name": (Agent.name,),
            "conversations": (conversations.desc(),),
        }[sort]
        rows, total = await self._page(stmt, (*order, Agent.id), skip, limit)
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
        members = await self.session.execute(
            select(User.id, User.email, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id)
            .order_by(User.email)
        )
        agents = await self.session.execute(
            select(Agent.id, Agent.name, Agent.status, Agent.placement)
            .where(Agent.org_id == org_id)
            .order_by(Agent.created_at)
        )
        year = datetime.now(UTC) - timedelta(days=365)
        revenue = await self._scalar(
            select(func.coalesce(func.sum(RevenueEvent.amount_cents), 0)).where(
                RevenueEvent.org_id == org_id, RevenueEvent.occurred_at >= year
            )
        )
        return {
            **page.items[0],
            "members": [{"user_id": u, "email": e, "role": r.value} for u, e, r in members.all()],
            "agents": [
                {"id": i, "name": n, "status": st.value, "placement": pl.value}
                for i, n, st, pl in agents.all()
            ],
            "usage_this_month": await Quotas(self.session, self.plans).usage(org_id),
            "revenue_cents_last_365_days": revenue,
        }

    async def user_report(self, user_id: str) -> dict[str, Any]:
        """One user: their list row and every organisation they belong to, with their role there."""
        found = await self.session.get(User, user_id)
        if found is None:
            raise NotFound("User")
        page = await self.users(found.email, 0, 1)
        orgs = await self.session.execute(
            select(Org.id, Org.name, Org.plan, Membership.role)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at)
        )
        return {
            **page.items[0],
            "memberships": [
                {"org_id": i, "name": n, "plan": p, "role": r.value} for i, n, p, r in orgs.all()
            ],
        }

    async def alerts(self, open_only: bool, skip: int, limit: int) -> Page:
        stmt = select(Alert)
        if open_only:
            stmt = stmt.where(Alert.acknowledged_at.is_(None))
        rows, total = await self._page(stmt, (Alert.last_seen_at.desc(), Alert.id), skip, limit)
        return Page([alert_out(row[0]) for row in rows], total)

    async def acknowledge(self, alert_id: str) -> dict[str, Any]:
        alert = await self.session.get(Alert, alert_id, with_for_update=True)
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
