"""Request and response bodies of the billing API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hutch.billing.models import LedgerKind, LedgerUnit


class PlanOut(BaseModel):
    id: str
    name: str
    price_cents: int
    interval: str
    trial_days: float
    trial_hours: int
    pay_per_use: bool
    available: bool  # can be bought now (free, or a paid plan with Stripe configured)
    limits: dict[str, Any]
    includes: list[str] = []  # what a live subscription sets up by itself: "runtime", "telegram_bot"


class PlanList(BaseModel):
    items: list[PlanOut]


class PackageOut(BaseModel):
    id: str
    name: str
    price_cents: int
    credits_cents: int | None
    seconds: int | None
    available: bool


class PackageList(BaseModel):
    items: list[PackageOut]


class UsageOut(BaseModel):
    plan: str
    limits: dict[str, Any]
    usage: dict[str, Any]


class BalanceOut(BaseModel):
    credits_cents: int
    seconds: int


class LedgerEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    unit: LedgerUnit
    kind: LedgerKind
    amount: int
    balance_after: int
    description: str
    created_at: datetime


class LedgerList(BaseModel):
    items: list[LedgerEntryOut]
    total: int


class InclusionOut(BaseModel):
    """One thing the plan includes and where it stands for the org."""

    item: str  # runtime | telegram_bot
    label: str
    # waiting | provisioning | ready | suspended | error | removed (a runtime removed after its grace period)
    state: str
    detail: str | None = None  # what it waits for, why it stopped or failed
    agent_id: str | None = None
    agent_name: str | None = None
    bot_username: str | None = None
    updated_at: datetime


class SubscriptionOut(BaseModel):
    plan: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None = None
    past_due_since: datetime | None = None
    # What the plan includes (plans' `includes`), provisioned while the subscription lives.
    includes: list[InclusionOut] = []


class CheckoutRequest(BaseModel):
    plan: str = Field(min_length=1, max_length=64)
    success_url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    cancel_url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")


class PurchaseRequest(BaseModel):
    package_id: str = Field(min_length=1, max_length=64)
    success_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    cancel_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class PortalRequest(BaseModel):
    return_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")


class CheckoutOut(BaseModel):
    url: str
    session_id: str


class PortalOut(BaseModel):
    url: str


class GrantRequest(BaseModel):
    credits_cents: int | None = Field(default=None, gt=0, le=10_000_000_00)
    seconds: int | None = Field(default=None, gt=0, le=10_000 * 3600)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _something(self) -> GrantRequest:
        if self.credits_cents is None and self.seconds is None:
            raise ValueError("give credits_cents, seconds or both")
        return self


class GrantOut(LedgerEntryOut):
    entries: list[LedgerEntryOut]  # both entries when credits and seconds were granted together


class PlanAssignment(BaseModel):
    plan: str = Field(min_length=1, max_length=64)


class OrgPlanOut(BaseModel):
    org_id: str
    plan: str
