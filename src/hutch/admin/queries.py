"""The admin console's read model: platform totals, lists and reports, and revenue and usage analytics.

Every number is counted in SQL (a row per answer, never whole tables in Python); lists page with
``skip``/``limit``, give their ``total``, and search by name or email. The platform admin sees every
organisation, so nothing here filters by tenant.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, Org, User
from hutch.agents.models import Agent
from hutch.alerts.models import Alert
from hutch.billing.models import (
    Balance,
    BillingAccount,
    RevenueEvent,
    SubscriptionStatus,
    UsageDaily,
    UsageMonthly,
)
from hutch.channels.models import Channel, ChannelUsageDaily
from hutch.channels.voice.models import VoiceSession
from hutch.conversations.models import Conversation, Memory, Message, MessageRole
from hutch.knowledge.models import Document
from hutch.runtimes.models import Runtime, RuntimeHost, RuntimeStatus

if TYPE_CHECKING:
    from hutch.admin.analytics import Range

BILLED = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)  # what MRR counts (trials pay nothing yet)


def _count(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.subquery())


class ConsoleQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _scalar(self, stmt: Any) -> int:
        return int(await self.session.scalar(stmt) or 0)

    async def _page(
        self, stmt: Select[Any], order: tuple[Any, ...], skip: int, limit: int
    ) -> tuple[list[Any], int]:
        """One page of ``stmt`` in ``order`` (ids break ties), and how many rows there are in all."""
        total = await self._scalar(_count(stmt))
        rows = await self.session.execute(stmt.order_by(*order).offset(skip).limit(limit))
        return list(rows.all()), total

    async def totals(self) -> dict[str, int]:
        """How many users, organisations, agents, conversations, messages and documents there are."""
        return {
            "users": await self._scalar(select(func.count()).select_from(User)),
            "orgs": await self._scalar(select(func.count()).select_from(Org)),
            "agents": await self._scalar(select(func.count()).select_from(Agent)),
            "conversations": await self._scalar(select(func.count()).select_from(Conversation)),
            "messages": await self._scalar(select(func.count()).select_from(Message)),
            "documents": await self._scalar(select(func.count()).select_from(Document)),
        }

    async def users_active_since(self, since: datetime) -> int:
        return await self._scalar(select(func.count()).where(User.last_active_at >= since))

    async def subscriptions_by_status(self) -> dict[SubscriptionStatus, int]:
        return dict(
            (
                await self.session.execute(
                    select(BillingAccount.status, func.count()).group_by(BillingAccount.status)
                )
            ).all()
        )

    async def billed_by_plan(self) -> list[Any]:
        """(plan, how many accounts pay for it) of the subscriptions MRR counts."""
        return list(
            (
                await self.session.execute(
                    select(BillingAccount.subscribed_plan, func.count())
                    .where(BillingAccount.status.in_(BILLED))
                    .group_by(BillingAccount.subscribed_plan)
                )
            ).all()
        )

    async def users_by_plan(self) -> dict[str, int]:
        return dict(
            (
                await self.session.execute(
                    select(Org.plan, func.count(func.distinct(Membership.user_id)))
                    .join(Membership, Membership.org_id == Org.id)
                    .group_by(Org.plan)
                )
            ).all()
        )

    async def runtimes_by_status(self) -> dict[RuntimeStatus, int]:
        return dict(
            (await self.session.execute(select(Runtime.status, func.count()).group_by(Runtime.status))).all()
        )

    async def users(
        self, q: str | None, skip: int, limit: int, sort: str, month: date
    ) -> tuple[list[Any], int]:
        """A page of (user, organisations, agents, messages this ``month``, plan of their first org)."""
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
        return await self._page(stmt, (*order, User.id), skip, limit)

    async def orgs(
        self, q: str | None, skip: int, limit: int, sort: str, month: date
    ) -> tuple[list[Any], int]:
        """A page of (org, members, agents, messages this ``month``, subscription, credits, seconds)."""
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
        return await self._page(stmt, (*order, Org.id), skip, limit)

    async def agents(self, q: str | None, skip: int, limit: int, sort: str) -> tuple[list[Any], int]:
        """A page of (agent, org name, conversations, memories, documents, channels)."""

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
        return await self._page(stmt, (*order, Agent.id), skip, limit)

    async def members_of(self, org_id: str) -> list[Any]:
        """(user id, email, role) of the organisation's members, by email."""
        rows = await self.session.execute(
            select(User.id, User.email, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id)
            .order_by(User.email)
        )
        return list(rows.all())

    async def agents_of(self, org_id: str) -> list[Any]:
        """(id, name, status, placement) of the organisation's agents, oldest first."""
        rows = await self.session.execute(
            select(Agent.id, Agent.name, Agent.status, Agent.placement)
            .where(Agent.org_id == org_id)
            .order_by(Agent.created_at)
        )
        return list(rows.all())

    async def revenue_since(self, org_id: str, since: datetime) -> int:
        return await self._scalar(
            select(func.coalesce(func.sum(RevenueEvent.amount_cents), 0)).where(
                RevenueEvent.org_id == org_id, RevenueEvent.occurred_at >= since
            )
        )

    async def user(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def memberships_of(self, user_id: str) -> list[Any]:
        """(org id, name, plan, role) of every organisation the user belongs to, in the order they joined."""
        rows = await self.session.execute(
            select(Org.id, Org.name, Org.plan, Membership.role)
            .join(Membership, Membership.org_id == Org.id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at)
        )
        return list(rows.all())

    async def alerts(self, open_only: bool, skip: int, limit: int) -> tuple[list[Alert], int]:
        """A page of alerts (only the unacknowledged ones when ``open_only``), most recently seen first."""
        stmt = select(Alert)
        if open_only:
            stmt = stmt.where(Alert.acknowledged_at.is_(None))
        rows, total = await self._page(stmt, (Alert.last_seen_at.desc(), Alert.id), skip, limit)
        return [row[0] for row in rows], total

    async def alert_for_update(self, alert_id: str) -> Alert | None:
        return await self.session.get(Alert, alert_id, with_for_update=True)


def _answered_on_platform_keys(span: Range) -> Any:
    """The range's answers paid for by the platform's keys (a BYOK answer costs Hutch nothing)."""
    return (Message.role == MessageRole.ASSISTANT) & Message.byok.is_(False) & span.covers(Message.created_at)


class AnalyticsQueries:
    """Revenue and usage over a :class:`~hutch.admin.analytics.Range`, its days read in its time zone."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revenue_by_day(self, span: Range) -> list[Any]:
        """(day, revenue, payments) of each day with a payment, in order."""
        day = span.day(RevenueEvent.occurred_at)
        return list(
            (
                await self.session.execute(
                    select(day, func.sum(RevenueEvent.amount_cents), func.count())
                    .where(span.covers(RevenueEvent.occurred_at))
                    .group_by(day)
                    .order_by(day)
                )
            ).all()
        )

    async def revenue_by_kind(self, span: Range) -> list[Any]:
        """(kind, plan, package, revenue, payments) of the range's payments."""
        return list(
            (
                await self.session.execute(
                    select(
                        RevenueEvent.kind,
                        RevenueEvent.plan,
                        RevenueEvent.package,
                        func.sum(RevenueEvent.amount_cents),
                        func.count(),
                    )
                    .where(span.covers(RevenueEvent.occurred_at))
                    .group_by(RevenueEvent.kind, RevenueEvent.plan, RevenueEvent.package)
                    .order_by(RevenueEvent.kind, RevenueEvent.plan, RevenueEvent.package)
                )
            ).all()
        )

    async def subscription_moves(self, span: Range) -> list[Any]:
        """(plan, the org's previous plan, whether it is its first payment, how many) of the range's
        subscription payments."""
        subscription = RevenueEvent.kind == "subscription"
        history = (
            select(
                RevenueEvent.org_id,
                RevenueEvent.plan,
                RevenueEvent.occurred_at,
                func.lag(RevenueEvent.plan)
                .over(partition_by=RevenueEvent.org_id, order_by=RevenueEvent.occurred_at)
                .label("previous"),
                (
                    func.row_number().over(
                        partition_by=RevenueEvent.org_id, order_by=RevenueEvent.occurred_at
                    )
                    == literal_column("1")
                ).label("first"),
            )
            .where(subscription)
            .subquery()
        )
        return list(
            (
                await self.session.execute(
                    select(history.c.plan, history.c.previous, history.c.first, func.count())
                    .where(span.covers(history.c.occurred_at))
                    .group_by(history.c.plan, history.c.previous, history.c.first)
                )
            ).all()
        )

    async def churned_by_plan(self, span: Range) -> list[Any]:
        """(plan, how many) of the subscriptions canceled in the range."""
        return list(
            (
                await self.session.execute(
                    select(BillingAccount.subscribed_plan, func.count())
                    .where(
                        BillingAccount.status == SubscriptionStatus.CANCELED,
                        span.covers(BillingAccount.stripe_state_at),
                    )
                    .group_by(BillingAccount.subscribed_plan)
                )
            ).all()
        )

    async def active_users(self, span: Range) -> int | None:
        return await self.session.scalar(select(func.count()).where(span.covers(User.last_active_at)))

    async def sessions_started(self, span: Range) -> int | None:
        return await self.session.scalar(select(func.count()).where(span.covers(Conversation.created_at)))

    async def message_groups(self, span: Range) -> list[Any]:
        """(day, channel, provider, messages, input tokens, output tokens, cost) of the range's messages."""
        # One pass over the range's messages (no join: each carries its channel), grouped by day, channel
        # and provider.
        day = span.day(Message.created_at)
        provider = func.split_part(Message.model, "/", 1)
        answered = Message.role == MessageRole.ASSISTANT
        return list(
            (
                await self.session.execute(
                    select(
                        day,
                        Message.channel,
                        provider,
                        func.count(),
                        func.coalesce(func.sum(Message.input_tokens).filter(answered), 0),
                        func.coalesce(func.sum(Message.output_tokens).filter(answered), 0),
                        func.coalesce(func.sum(Message.cost_micro_usd).filter(answered), 0),
                    )
                    .where(span.covers(Message.created_at))
                    .group_by(day, Message.channel, provider)
                )
            ).all()
        )

    async def voice(self, span: Range) -> tuple[int, int]:
        """How many voice sessions started in the range, and their seconds."""
        voice = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(VoiceSession.seconds), 0)).where(
                    span.covers(VoiceSession.started_at)
                )
            )
        ).one()
        return int(voice[0]), int(voice[1])

    async def org_channel_usage(self, org_id: str, since: date) -> list[Any]:
        """(day, channel, inbound, outbound) of one organisation since ``since``."""
        return list(
            (
                await self.session.execute(
                    select(
                        ChannelUsageDaily.day,
                        ChannelUsageDaily.channel,
                        func.sum(ChannelUsageDaily.inbound),
                        func.sum(ChannelUsageDaily.outbound),
                    )
                    .where(ChannelUsageDaily.org_id == org_id, ChannelUsageDaily.day >= since)
                    .group_by(ChannelUsageDaily.day, ChannelUsageDaily.channel)
                    .order_by(ChannelUsageDaily.day, ChannelUsageDaily.channel)
                )
            ).all()
        )

    async def org_daily_usage(self, org_id: str, since: date) -> list[Any]:
        """(day, messages, input tokens, output tokens, voice seconds, tool calls, transcription seconds) of
        one organisation since ``since``."""
        return list(
            (
                await self.session.execute(
                    select(
                        UsageDaily.day,
                        UsageDaily.messages,
                        UsageDaily.input_tokens,
                        UsageDaily.output_tokens,
                        UsageDaily.voice_seconds,
                        UsageDaily.tool_calls,
                        UsageDaily.transcription_seconds,
                    )
                    .where(UsageDaily.org_id == org_id, UsageDaily.day >= since)
                    .order_by(UsageDaily.day)
                )
            ).all()
        )

    async def revenue_by_org(self, span: Range) -> dict[str, int]:
        return dict(
            (
                await self.session.execute(
                    select(RevenueEvent.org_id, func.sum(RevenueEvent.amount_cents))
                    .where(span.covers(RevenueEvent.occurred_at))
                    .group_by(RevenueEvent.org_id)
                )
            ).all()
        )

    async def model_cost_by_org(self, span: Range) -> dict[str, int]:
        """Micro-USD of the range's answers on the platform's keys, per organisation."""
        return dict(
            (
                await self.session.execute(
                    select(Message.org_id, func.sum(Message.cost_micro_usd))
                    .where(_answered_on_platform_keys(span))
                    .group_by(Message.org_id)
                )
            ).all()
        )

    async def runtime_cost_by_org(self, span: Range) -> dict[str, float]:
        """Cents of runtime hours inside the range at their host's hourly cost, per organisation."""
        # Runtime hours inside the range, from when each became ready (a running runtime counts until now).
        until = func.least(func.now(), span.end)
        hours = func.greatest(
            0.0, func.extract("epoch", until - func.greatest(Runtime.ready_at, span.start)) / 3600.0
        )
        return dict(
            (
                await self.session.execute(
                    select(Runtime.org_id, func.sum(hours * RuntimeHost.hourly_cost_cents))
                    .join(RuntimeHost, RuntimeHost.id == Runtime.host_id)
                    .where(Runtime.status == RuntimeStatus.READY, Runtime.ready_at.is_not(None))
                    .group_by(Runtime.org_id)
                )
            ).all()
        )

    async def outbound_by_org_and_channel(self, since: date, before: date) -> list[Any]:
        """(org, channel, outgoing messages) counted from ``since`` up to ``before``."""
        return list(
            (
                await self.session.execute(
                    select(
                        ChannelUsageDaily.org_id,
                        ChannelUsageDaily.channel,
                        func.sum(ChannelUsageDaily.outbound),
                    )
                    .where(ChannelUsageDaily.day >= since, ChannelUsageDaily.day < before)
                    .group_by(ChannelUsageDaily.org_id, ChannelUsageDaily.channel)
                )
            ).all()
        )

    async def org_names(self, org_ids: set[str]) -> dict[str, str]:
        if not org_ids:
            return {}
        return dict((await self.session.execute(select(Org.id, Org.name).where(Org.id.in_(org_ids)))).all())

    async def model_cost_by_channel(self, span: Range) -> list[Any]:
        """(channel, micro-USD) of the range's answers on the platform's keys."""
        return list(
            (
                await self.session.execute(
                    select(Message.channel, func.sum(Message.cost_micro_usd))
                    .where(_answered_on_platform_keys(span))
                    .group_by(Message.channel)
                )
            ).all()
        )

    async def model_cost_by_agent(self, span: Range, limit: int) -> list[Any]:
        """(agent, micro-USD) of the ``limit`` agents whose answers on the platform's keys cost most."""
        return list(
            (
                await self.session.execute(
                    select(Conversation.agent_id, func.sum(Message.cost_micro_usd))
                    .select_from(Message)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(_answered_on_platform_keys(span))
                    .group_by(Conversation.agent_id)
                    .order_by(func.sum(Message.cost_micro_usd).desc())
                    .limit(limit)
                )
            ).all()
        )
