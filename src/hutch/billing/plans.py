"""Plans and prepaid packages: read from a TOML file at start-up, checked, and kept in memory.

The file shipped with Hutch (``plans.toml`` next to this module) applies unless ``HUTCH_PLANS_FILE`` names
the operator's own, which then replaces it. A missing or invalid file stops start-up with a message naming
the file, the entry and what is wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hutch.settings import Settings

BUILTIN_PLANS = Path(__file__).with_name("plans.toml")
FREE_PLAN = "free"
LimitName = Literal[
    "agents",
    "dedicated_runtimes",
    "messages_per_month",
    "messages_per_day",
    "messages_per_minute",
    "documents_per_agent",
    "storage_mb",
    "tool_calls_per_month",
    "transcription_minutes_per_month",
    "attachment_mb",
    "telegram_bots",
    "telegram_bot_requests_per_day",
    "end_user_messages_per_minute",
    "end_user_messages_per_day",
]
AttachmentKind = Literal["image", "audio", "document"]
# What a plan's live subscription provisions by itself: a dedicated runtime for the org's first agent, and a
# Telegram bot for it (see ``hutch.provisioning.flow``).
IncludedItem = Literal["runtime", "telegram_bot"]
INCLUDED_ITEMS: tuple[IncludedItem, ...] = ("runtime", "telegram_bot")
# The plan's limit an included item needs room in.
INCLUDED_NEEDS: dict[IncludedItem, LimitName] = {
    "runtime": "dedicated_runtimes",
    "telegram_bot": "telegram_bots",
}
ATTACHMENT_KINDS: tuple[AttachmentKind, ...] = ("image", "audio", "document")


class PlanFileError(Exception):
    """The plans file is missing or invalid; the message says where and what."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanLimits(_Strict):
    """What an org on the plan may use; ``None`` is unlimited."""

    agents: int | None = Field(default=None, ge=0)
    dedicated_runtimes: int | None = Field(default=None, ge=0)
    runtime_cpu: float | None = Field(default=None, ge=0)
    runtime_memory_mb: int | None = Field(default=None, ge=0)
    messages_per_month: int | None = Field(default=None, ge=0)
    messages_per_day: int | None = Field(default=None, ge=0)
    messages_per_minute: int | None = Field(default=None, ge=1)
    documents_per_agent: int | None = Field(default=None, ge=0)
    storage_mb: int | None = Field(default=None, ge=0)
    included_credits_cents: int = Field(default=0, ge=0)
    unlimited_voice: bool = False  # voice sessions draw no prepaid time
    # Calls to tools that reach outside (web search, MCP servers, webhook tools), all agents together.
    tool_calls_per_month: int | None = Field(default=None, ge=0)
    transcription_minutes_per_month: int | None = Field(default=None, ge=0)  # voice notes read aloud
    attachment_mb: int | None = Field(default=None, ge=0)  # the largest file a person may send in chat
    attachment_types: tuple[AttachmentKind, ...] = ATTACHMENT_KINDS  # what people may send in chat
    # Telegram bots of the org's agents, however each was made (its token, the factory, a managed bot).
    telegram_bots: int | None = Field(default=None, ge=0)
    # Bots asked of the bot factory a day (UTC), deleted ones too: each uses the operator's creator accounts.
    telegram_bot_requests_per_day: int | None = Field(default=None, ge=0)
    # Fair use: what one person (a stranger on Telegram, WhatsApp, the widget, voice or the API's `user`)
    # may send one agent; an agent may set lower values of its own.
    end_user_messages_per_minute: int | None = Field(default=None, ge=1)
    end_user_messages_per_day: int | None = Field(default=None, ge=1)
    # The browser agents drive (docs/browser.md): whether the plan includes it, and how many browsers the
    # org's agents may have open at once.
    browser: bool = True
    browsers: int | None = Field(default=None, ge=0)


class Plan(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(ge=0)
    interval: Literal["month", "year"] = "month"
    trial_hours: int = Field(default=0, ge=0, le=24 * 730)
    stripe_price_id: str = ""
    pay_per_use: bool = False
    limits: PlanLimits = PlanLimits()
    includes: tuple[IncludedItem, ...] = ()  # provisioned while the subscription lives

    @model_validator(mode="after")
    def _includes_fit_the_limits(self) -> Plan:
        if len(set(self.includes)) != len(self.includes):
            raise ValueError("includes lists an item twice")
        for item in self.includes:
            if self.limit(INCLUDED_NEEDS[item]) == 0:
                raise ValueError(f"includes {item!r}, but limits.{INCLUDED_NEEDS[item]} is 0")
        return self

    @property
    def is_paid(self) -> bool:
        return self.price_cents > 0

    @property
    def trial_days(self) -> float:
        return round(self.trial_hours / 24, 2)

    def limit(self, name: LimitName) -> int | None:
        value: int | None = getattr(self.limits, name)
        return value


class Package(_Strict):
    """A prepaid purchase: credits (cents) and/or time (seconds), bought once through Checkout."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(gt=0)
    credits_cents: int | None = Field(default=None, gt=0)
    seconds: int | None = Field(default=None, gt=0)
    stripe_price_id: str = ""

    @model_validator(mode="after")
    def _gives_something(self) -> Package:
        if self.credits_cents is None and self.seconds is None:
            raise ValueError("a package needs credits_cents, seconds or both")
        return self


class BillingSettings(_Strict):
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")
    first_purchase_bonus_cents: int = Field(default=0, ge=0)
    # What earns it, once per org, whichever comes first: a prepaid package, the first paid subscription
    # invoice, or both.
    first_purchase_bonus_applies_to: tuple[Literal["packages", "subscriptions"], ...] = ("packages",)
    low_balance_threshold_cents: int = Field(default=0, ge=0)
    low_time_threshold_seconds: int = Field(default=0, ge=0)  # a voice token warns below this much time
    # How long a subscription may stay past due (Stripe retrying the card) before what it pays for is
    # suspended: dedicated runtimes stopped, included bots paused. 0 suspends at the first failed payment.
    past_due_grace_hours: float = Field(default=0, ge=0, le=24 * 90)


class PlanCatalog(_Strict):
    billing: BillingSettings = BillingSettings()
    plans: list[Plan]
    packages: list[Package] = []

    @model_validator(mode="after")
    def _consistent(self) -> PlanCatalog:
        plan_ids = [p.id for p in self.plans]
        if FREE_PLAN not in plan_ids:
            raise ValueError(f"the plans must include {FREE_PLAN!r}, the plan every new org starts on")
        for kind, ids in (("plan", plan_ids), ("package", [p.id for p in self.packages])):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{kind} ids must be unique; repeated: {', '.join(duplicates)}")
        free = self.plan(FREE_PLAN)
        if free is not None and free.is_paid:
            raise ValueError(f"the {FREE_PLAN!r} plan must cost nothing")
        return self

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def plan_or_free(self, plan_id: str) -> Plan:
        """The org's plan; an id the file no longer has falls back to free rather than failing requests."""
        plan = self.plan(plan_id) or self.plan(FREE_PLAN)
        assert plan is not None  # checked when the file was loaded
        return plan

    def package(self, package_id: str) -> Package | None:
        return next((p for p in self.packages if p.id == package_id), None)


def load_plans(settings: Settings) -> PlanCatalog:
    path = settings.plans_file or BUILTIN_PLANS
    hint = " (HUTCH_PLANS_FILE)" if settings.plans_file else ""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"The plans file {path}{hint} does not exist.") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PlanFileError(f"Cannot read the plans file {path}{hint}: {exc}.") from None
    try:
        return PlanCatalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _location(raw, first["loc"])
        raise PlanFileError(f"Invalid plans file {path}{hint}: {where}{first['msg']}.") from None


def _location(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """``plans[2] (id "pro").limits.agents: `` — the entry named by its id when it has one."""
    parts: list[str] = []
    node: Any = raw
    for step in loc:
        if isinstance(step, int):
            entry = node[step] if isinstance(node, list) and step < len(node) else None
            named = f' (id "{entry["id"]}")' if isinstance(entry, dict) and "id" in entry else ""
            parts[-1] += f"[{step}]{named}"
            node = entry
        else:
            parts.append(step)
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts) + ": " if parts else ""
