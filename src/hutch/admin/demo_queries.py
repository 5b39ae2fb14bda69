"""The writes ``hutch demo`` makes around the services: moving conversations to their day in the past,
recording payments, recounting the usage counters from the moved messages and ageing its alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.alerts.models import Alert
from hutch.billing.models import RevenueEvent, UsageDaily, UsageMonthly
from hutch.channels.models import ChannelUsageDaily
from hutch.conversations.models import Conversation, Message, MessageRole
from hutch.core.ids import new_id


class DemoQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def has_users(self) -> bool:
        return await self.session.scalar(select(func.count()).select_from(User)) != 0

    async def close_conversation(self, conversation_id: str, when: datetime) -> None:
        await self.session.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(closed_at=when)
        )

    async def move_conversation(self, conversation_id: str, when: datetime) -> None:
        """Put a conversation (and its messages, a few seconds apart) on its day in the past."""
        first = await self.session.scalar(
            select(func.min(Message.created_at)).where(Message.conversation_id == conversation_id)
        )
        if first is None:
            return
        shift = when - first
        await self.session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id)
            .values(created_at=Message.created_at + literal(shift))
        )
        await self.session.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(created_at=when)
        )

    async def record_payment(
        self,
        org_id: str,
        kind: str,
        amount_cents: int,
        currency: str,
        plan: str | None,
        package: str | None,
        occurred_at: datetime,
    ) -> None:
        await self.session.execute(
            insert(RevenueEvent).values(
                id=new_id("rev"),
                org_id=org_id,
                source=f"demo:{new_id('in')}",
                kind=kind,
                amount_cents=amount_cents,
                currency=currency,
                plan=plan,
                package=package,
                occurred_at=occurred_at,
            )
        )

    async def recount_usage(self, demo_orgs: list[str]) -> None:
        """Daily and monthly counters of the demo organisations, recounted from their moved messages."""
        day = func.date(func.timezone("UTC", Message.created_at))
        answered = Message.role == MessageRole.ASSISTANT
        daily = (
            await self.session.execute(
                select(
                    Message.org_id,
                    day,
                    func.count().filter(~answered),
                    func.sum(Message.input_tokens),
                    func.sum(Message.output_tokens),
                    func.sum(Message.cost_micro_usd),
                )
                .where(Message.org_id.in_(demo_orgs))
                .group_by(Message.org_id, day)
            )
        ).all()
        await self.session.execute(
            update(UsageDaily)
            .where(UsageDaily.org_id.in_(demo_orgs))
            .values(messages=0, input_tokens=0, output_tokens=0, cost_micro_usd=0)
        )
        for org_id, on, messages, input_tokens, output_tokens, cost in daily:
            stmt = insert(UsageDaily).values(
                org_id=org_id,
                day=on,
                messages=messages,
                input_tokens=input_tokens or 0,
                output_tokens=output_tokens or 0,
                cost_micro_usd=cost or 0,
            )
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[UsageDaily.org_id, UsageDaily.day],
                    set_={
                        k: stmt.excluded[k]
                        for k in ("messages", "input_tokens", "output_tokens", "cost_micro_usd")
                    },
                )
            )
        month = func.date_trunc("month", func.timezone("UTC", Message.created_at))
        monthly = (
            await self.session.execute(
                select(Message.org_id, month, func.count())
                .where(Message.org_id.in_(demo_orgs), Message.role == MessageRole.USER)
                .group_by(Message.org_id, month)
            )
        ).all()
        await self.session.execute(delete(UsageMonthly).where(UsageMonthly.org_id.in_(demo_orgs)))
        for org_id, starts, messages in monthly:
            self.session.add(UsageMonthly(org_id=org_id, month=starts.date(), messages=messages))
        by_channel = (
            await self.session.execute(
                select(
                    Conversation.agent_id,
                    Message.channel,
                    day,
                    Message.org_id,
                    func.count().filter(Message.role == MessageRole.USER),
                    func.count().filter(answered),
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Message.org_id.in_(demo_orgs), Message.channel.in_(["telegram", "webchat", "whatsapp"])
                )
                .group_by(Conversation.agent_id, Message.channel, day, Message.org_id)
            )
        ).all()
        await self.session.execute(delete(ChannelUsageDaily).where(ChannelUsageDaily.org_id.in_(demo_orgs)))
        for agent_id, channel, on, org_id, inbound, outbound in by_channel:
            self.session.add(
                ChannelUsageDaily(
                    agent_id=agent_id,
                    channel=channel,
                    day=on,
                    org_id=org_id,
                    inbound=inbound,
                    outbound=outbound,
                )
            )

    async def oldest_orgs(self, limit: int) -> Sequence[Org]:
        return (await self.session.scalars(select(Org).order_by(Org.created_at).limit(limit))).all()

    async def age_alerts(self, dedup_prefix: str, by: timedelta) -> None:
        """Move the alerts whose key starts with ``dedup_prefix`` back ``by``, as last seen now."""
        await self.session.execute(
            update(Alert)
            .where(Alert.dedup_key.startswith(dedup_prefix))
            .values(created_at=Alert.created_at - literal(by), last_seen_at=func.now())
        )
