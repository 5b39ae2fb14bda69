"""Billing tables: plans mirror, subscription state, prepaid ledger, metering and Stripe events."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class PlanRecord(Base):
    """The plans file as last loaded, so SQL (reports, the admin console) can join on plans."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer)
    interval: Mapped[str] = mapped_column(String(16))
    trial_hours: Mapped[int] = mapped_column(Integer)
    pay_per_use: Mapped[bool] = mapped_column(Boolean)
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # false once the file no longer has it
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SubscriptionStatus(StrEnum):
    NONE = "none"  # never subscribed (the free plan, or a plan an admin assigned)
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class BillingAccount(TimestampMixin, Base):
    """An org's Stripe customer and subscription, as the verified webhooks last described it."""

    __tablename__ = "billing_accounts"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[SubscriptionStatus] = mapped_column(
        str_enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.NONE
    )
    subscribed_plan: Mapped[str | None] = mapped_column(String(64))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    # When Stripe produced the state above (the event's `created`): older events never overwrite it.
    stripe_state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_purchase_done: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the subscription became past due (kept while it stays so): its grace period counts from here.
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InclusionState(StrEnum):
    """Where one thing a plan includes stands for an org (``hutch.provisioning.flow`` moves it)."""

    WAITING = "waiting"  # for the org's first agent, or for the customer to create the bot (``detail``)
    PROVISIONING = "provisioning"  # asked for; a runtime's own status says more
    READY = "ready"
    SUSPENDED = "suspended"  # the subscription ended or stayed unpaid: stopped or paused, kept
    ERROR = "error"  # could not be provisioned (``detail`` says why); tried again at the next change


class Inclusion(TimestampMixin, Base):
    """One thing the org's plan includes ("runtime" or "telegram_bot"), as its subscription provisioned it:
    for which agent, with which bot, where it stands, and the last state the owners were told of."""

    __tablename__ = "inclusions"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    item: Mapped[str] = mapped_column(String(32), primary_key=True)  # an IncludedItem
    state: Mapped[InclusionState] = mapped_column(str_enum(InclusionState, "inclusion_state"))
    detail: Mapped[str | None] = mapped_column(Text)  # for the customer: what it waits for, why it stopped
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # The bot the plan provided (paused and resumed with the subscription); None for a bot the agent had.
    channel_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    bot_request_id: Mapped[str | None] = mapped_column(ForeignKey("bot_requests.id", ondelete="SET NULL"))
    notified_state: Mapped[str | None] = mapped_column(String(32))  # told once per state
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class LedgerUnit(StrEnum):
    CREDITS = "credits"  # cents
    SECONDS = "seconds"  # voice and time cards


class LedgerKind(StrEnum):
    PURCHASE = "purchase"
    BONUS = "bonus"
    GRANT = "grant"
    INCLUDED = "included"  # credits a plan includes each period
    SPEND = "spend"


class Balance(Base):
    """The running sum of an org's ledger, per unit; locked by every entry so it can never go negative."""

    __tablename__ = "balances"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    credits_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Token costs below a cent wait here until they add up to whole cents to charge.
    uncharged_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    low_credits_notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerEntry(Base):
    """Append-only: a balance is the sum of its org's entries in that unit."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_org_created", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    unit: Mapped[LedgerUnit] = mapped_column(str_enum(LedgerUnit, "ledger_unit"))
    kind: Mapped[LedgerKind] = mapped_column(str_enum(LedgerKind, "ledger_kind"))
    amount: Mapped[int] = mapped_column(BigInteger)  # positive adds, negative spends
    balance_after: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500), default="")
    # What caused it (a Checkout Session, a message, a grant); unique so a replay cannot add it twice.
    reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(32))
    # clock_timestamp(), not now(): entries written in one transaction keep their order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


class UsageDaily(Base):
    """What an org used on one UTC day; months are sums of days."""

    __tablename__ = "usage_daily"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    documents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    voice_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Calls to tools that reach outside (web search and fetch, MCP servers, webhook tools); their cost is
    # also in ``cost_micro_usd``, which is everything the day's answers cost.
    tool_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tool_cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transcription_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transcription_cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class UsageMonthly(Base):
    """Messages per org per month, reserved with one conditional upsert so quotas hold under concurrency."""

    __tablename__ = "usage_monthly"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StripeEvent(Base):
    """Every verified Stripe event, stored once: a replayed id is acknowledged and does nothing."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    org_id: Mapped[str | None] = mapped_column(String(32), index=True)
    handled: Mapped[bool] = mapped_column(Boolean, default=True)  # false for types Hutch ignores
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RevenueEvent(Base):
    """Money received (a paid invoice or a prepaid purchase), for revenue reports."""

    __tablename__ = "revenue_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(255), unique=True)  # the invoice or Checkout Session id
    kind: Mapped[str] = mapped_column(String(32))  # subscription | purchase
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    plan: Mapped[str | None] = mapped_column(String(64))
    package: Mapped[str | None] = mapped_column(String(64))  # the prepaid package a purchase bought
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SpendHold(Base):
    """What a turn in flight may cost at most, held from its admission against its API key's monthly budget
    and its org's credits, and deleted in the transaction that meters its answer (``hutch.billing.holds``).
    A hold whose turn never finished (its process died) stops counting when it expires."""

    __tablename__ = "spend_holds"

    reference: Mapped[str] = mapped_column(String(100), primary_key=True)  # the turn's (its message's id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    key_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # against the key's budget
    credit_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # against the org's credits
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
