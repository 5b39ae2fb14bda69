"""Provisioning that follows payment: what a plan includes (``includes`` in the plans file) is provisioned
while the org's subscription lives, suspended when it ends or stays unpaid past the grace period, and
resumed when it is paid again. This module owns that flow: its job is the one transaction that moves it.

Billing hands every change to :func:`follow_plan` by its job's name (:mod:`hutch.billing.inclusions`): the
Stripe events that may change a subscription (Checkout completed, a trial or subscription created, updated
or deleted, an invoice paid or failed), a cancel or plan change from the dashboard, and a platform admin
assigning a plan. The job reads the state those left, not the event, and moves each included thing toward
it, one job at a time per org: replayed events, retries and events in any order end the same. Every minute
:func:`sweep` follows the orgs that time or another domain moved: an included thing waiting for the org's
first agent or for its bot, an agent deleted, a subscription unpaid past the grace period.

- ``runtime``: a dedicated runtime for the org's first (oldest) agent, through the runtimes' own lifecycle:
  requested as ``POST .../runtime`` requests it (a stopped or failed one starts again), stopped by the
  runtimes' ``suspend_org`` job, which follows the same billing standing as their health job. Without an
  agent it waits, and is provisioned within a minute of the first agent's creation. The runtime tells the
  owners when it is ready (its own notice); this flow tells them when it stops and starts again.
- ``telegram_bot``: a Telegram bot for that agent. When the bot factory has creator accounts, it makes the
  bot and the owners are told it is ready, with where to find the code that makes them its owner; without,
  they are sent the agent's channels page, where one tap creates a managed bot (or a token connects one),
  and the bot made there is the included one. An agent that already had a bot keeps it as the included
  one, and billing never pauses it. Paused: its webhook is deleted, so Telegram stops sending its messages;
  resumed: the webhook is set again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from hutch.accounts.models import Org
from hutch.accounts.suspension import SUSPEND_RUNTIMES_JOB
from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.billing.inclusions import FOLLOW_PLAN_JOB, entitlement
from hutch.billing.inclusions_repository import InclusionRepository
from hutch.billing.jobs import BILLING_PAGE, email_owners
from hutch.billing.models import BillingAccount, Inclusion, InclusionState
from hutch.billing.plans import IncludedItem
from hutch.botfactory.models import BotRequest, RequestStatus
from hutch.botfactory.service import BotRequests, CreatorAccounts
from hutch.channels.models import Channel, ChannelStatus, ChannelType
from hutch.channels.repository import ChannelRepository
from hutch.channels.telegram.service import TelegramChannels
from hutch.core.errors import HutchError
from hutch.core.principal import USER_SCOPES, Principal, PrincipalKind
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.i18n import N_, _
from hutch.runtimes.models import RuntimeStatus
from hutch.runtimes.repository import RuntimeRepository
from hutch.runtimes.service import RuntimeService, standing

log = structlog.get_logger(__name__)
SWEEP_JOB = "provisioning.sweep"
NOTICE = "plan_includes"
LABELS: dict[str, str] = {"runtime": N_("dedicated runtime"), "telegram_bot": N_("Telegram bot")}
# What the owners are told (``News``).
PAUSED_SUBJECT = N_("{org}: your plan's {item} is paused")
PAUSED = N_("Your plan's {item} is paused: {reason}. Paying again resumes it.")
INCLUDES_SUBJECT = N_("{org}: your plan includes a {item}")
NEEDS_AGENT = N_("Your plan includes a {item}: create your first agent and it is set up for it.")
NEEDS_YOU = N_("Your plan includes a {item}: create it in one tap here: {link}")
BACK_SUBJECT = N_("{org}: your plan's {item} is back")
STARTING_AGAIN = N_("Your plan's {item} is starting again.")
RUNNING_AGAIN = N_("Your plan's {item} is running again.")
BOT_READY_SUBJECT = N_("{org}: your Telegram bot @{bot} is ready")
BOT_READY = N_("Your Telegram bot @{bot} is ready: https://t.me/{bot}")
BOT_READY_UNVERIFIED = N_(
    "Your Telegram bot @{bot} is ready: https://t.me/{bot}. Send it the code shown on {link} to become its "
    "owner."
)
FAILED_SUBJECT = N_("{org}: your plan's {item} could not be set up")
FAILED = N_("Your plan's {item} could not be set up: {reason}")
NO_AGENT = "Waiting for the organisation's first agent: it is set up within a minute of its creation."
BY_HAND = "Waiting for you: create the bot in one tap on the agent's channels page."


class PlanProvisioning:
    """One org's included things, moved toward what its plan and subscription say (one job's work)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.uow = ctx.uow
        self.session = ctx.uow.session
        self.resources = ctx.resources
        self.inclusions = InclusionRepository(ctx.uow.session)

    async def follow(self, org_id: str) -> dict[str, str]:
        """Provision, suspend or resume each included thing; where each stands afterwards."""
        org = await self.session.get(Org, org_id)
        if org is None:
            return {}
        plans = self.resources.plans
        plan = plans.plan_or_free(org.plan)
        account = await self.session.get(BillingAccount, org_id)
        ended = entitlement(account, plans.billing, datetime.now(UTC))
        rows = {row.item: row for row in await self.inclusions.of_org(org_id, for_update=True)}
        told = {row.item: row.notified_state for row in rows.values()}  # read before the rows change
        principal = Principal(PrincipalKind.USER, org_id, USER_SCOPES, org_role="owner")
        if ended is None:
            for item in plan.includes:
                row = rows.get(item)
                if row is None:
                    row = rows[item] = Inclusion(org_id=org_id, item=item, state=InclusionState.PROVISIONING)
                    self.inclusions.add(row)
                await self._provide(principal, item, row)
        else:
            # Everything a plan provided stops, whichever plan it was (a plan changed before the end).
            for row in rows.values():
                if row.state is not InclusionState.SUSPENDED:
                    await self._suspend(row, ended)
        await self.session.flush()
        await self._tell(org, list(rows.values()), told)
        return {item: row.state.value for item, row in sorted(rows.items())}

    async def _provide(self, principal: Principal, item: IncludedItem, row: Inclusion) -> None:
        agents = AgentRepository(self.session)
        agent = await agents.get(principal, row.agent_id) if row.agent_id else None
        if agent is None:
            first, _ = await agents.page(principal, 0, 1)
            agent = first[0] if first else None
        if agent is None:
            row.agent_id, row.state, row.detail = None, InclusionState.WAITING, NO_AGENT
            return
        row.agent_id = agent.id
        if item == "runtime":
            await self._runtime(principal, agent, row)
        else:
            await self._bot(principal, agent, row)

    async def _runtime(self, principal: Principal, agent: Agent, row: Inclusion) -> None:
        verdict, why = await standing(self.uow, self.resources.plans, self.ctx.settings, row.org_id)
        if verdict != "good":  # the org is suspended, or its prepaid credits ran out: the lifecycle holds it
            row.state, row.detail = InclusionState.SUSPENDED, (why or "").removeprefix("suspended: ")
            return
        runtime = await RuntimeRepository(self.session).of_agent(agent.id)
        if runtime is not None and runtime.status in (RuntimeStatus.PROVISIONING, RuntimeStatus.READY):
            ready = runtime.status is RuntimeStatus.READY
            row.state = InclusionState.READY if ready else InclusionState.PROVISIONING
            row.detail = None
            return
        try:  # none yet, or stopped or failed: started (again) as the customer's own request would
            await RuntimeService.of(self.uow, self.resources).request(principal, agent.id)
        except HutchError as refused:  # the plan's runtimes used by hand already, no host with room
            row.state, row.detail = InclusionState.ERROR, refused.detail
            return
        row.state, row.detail = InclusionState.PROVISIONING, None

    async def _bot(self, principal: Principal, agent: Agent, row: Inclusion) -> None:
        channels = await ChannelRepository(self.session).of_agent(agent.id)
        bots = [c for c in channels if c.type is ChannelType.TELEGRAM]
        if bots:
            bot = next((b for b in bots if b.id == row.channel_id), bots[0])
            # Made for the plan: by the factory, or by the customer from the page the owners were sent.
            provided = row.channel_id is not None or row.bot_request_id is not None
            if not provided and row.state is not InclusionState.WAITING:
                # The agent had its bot before the plan did: it stays the customer's own, never paused.
                row.state, row.detail = InclusionState.READY, f"The agent's own bot, @{bot.username}."
                return
            if row.channel_id == bot.id and row.state is InclusionState.SUSPENDED:
                await TelegramChannels.of(self.uow, self.resources).resume(bot)
            row.channel_id, row.state, row.detail = bot.id, InclusionState.READY, None
            return
        if row.bot_request_id is not None:
            request = await self.session.get(BotRequest, row.bot_request_id)
            if request is not None and request.status in (RequestStatus.QUEUED, RequestStatus.CREATING):
                row.state, row.detail = InclusionState.PROVISIONING, None
                return
            failed = request.error if request is not None and request.status is RequestStatus.FAILED else None
            # The factory could not make it, or its bot was removed since: the customer makes one.
            row.state, row.detail = InclusionState.WAITING, f"{failed} {BY_HAND}" if failed else BY_HAND
            return
        secret_box = self.resources.secret_box
        if await CreatorAccounts(self.session, secret_box).usable_count() == 0:
            row.state, row.detail = InclusionState.WAITING, BY_HAND
            return
        try:
            factory = BotRequests(self.uow, secret_box, self.resources.plans, self.resources.rate_limiter)
            request = await factory.request(principal, agent.id, None)
        except HutchError as refused:  # the plan's bots used already
            row.state, row.detail = InclusionState.ERROR, refused.detail
            return
        row.bot_request_id, row.state, row.detail = request.id, InclusionState.PROVISIONING, None

    async def _suspend(self, row: Inclusion, why: str) -> None:
        if row.item == "runtime":
            # The runtimes' lifecycle stops every runtime of the org that billing no longer lets run.
            self.uow.defer(SUSPEND_RUNTIMES_JOB, org_id=row.org_id)
        elif row.channel_id is not None:
            channel = await self.session.get(Channel, row.channel_id)
            if channel is not None:
                await TelegramChannels.of(self.uow, self.resources).pause(channel)
        row.state, row.detail = InclusionState.SUSPENDED, why

    async def _tell(self, org: Org, rows: list[Inclusion], told: dict[str, str | None]) -> None:
        """One notice (email and linked chats) for what changed since the owners were last told; written in
        each owner's language (``email_owners`` renders it for each)."""
        news: list[News] = []
        for row in rows:
            found = await self._news(row, told.get(row.item))
            if found is not None:
                news.append(found)
                row.notified_state = _told_key(row)
        if not news:
            return
        billing = f"{self.ctx.settings.base_url}{BILLING_PAGE}"

        def compose(name: str) -> tuple[str, str]:
            lines = "\n".join(f"- {item.line()}" for item in news)
            if len(news) == 1:
                subject = news[0].subject(name)
            else:
                subject = _("{org}: what your plan includes").format(org=name)
            see = _("See them on the billing page: {link}").format(link=billing)
            return subject, _("Hello,") + f"\n\n{lines}\n\n{see}\n"

        def chat() -> str:  # said in each owner's language, like the email
            return "\n".join(item.line() for item in news) + f"\n{billing}"

        await email_owners(self.ctx, org.id, NOTICE, compose, chat=chat)

    async def _news(self, row: Inclusion, told: str | None) -> News | None:
        """What to tell about ``row`` now, once per state; None when nothing news-worthy happened."""
        state = row.state
        if told == _told_key(row):
            return None
        values = {"item": LABELS.get(row.item, row.item), "reason": row.detail or ""}
        values["link"] = f"{self.ctx.settings.base_url}/app/agents/{row.agent_id}/channels"
        if state is InclusionState.SUSPENDED:
            return News(PAUSED_SUBJECT, PAUSED, values)
        if state is InclusionState.WAITING and row.agent_id is None:
            return News(INCLUDES_SUBJECT, NEEDS_AGENT, values)
        if state is InclusionState.WAITING:
            return News(INCLUDES_SUBJECT, NEEDS_YOU, values)
        if told == InclusionState.SUSPENDED.value and state is InclusionState.PROVISIONING:
            return News(BACK_SUBJECT, STARTING_AGAIN, values)
        if told == InclusionState.SUSPENDED.value and state is InclusionState.READY:
            return News(BACK_SUBJECT, RUNNING_AGAIN, values)
        if state is InclusionState.READY and row.item == "telegram_bot" and row.channel_id is not None:
            channel = await self.session.get(Channel, row.channel_id)
            if channel is None:
                return None
            values["bot"] = channel.username or ""
            unverified = channel.status is ChannelStatus.UNVERIFIED
            return News(BOT_READY_SUBJECT, BOT_READY_UNVERIFIED if unverified else BOT_READY, values)
        if state is InclusionState.ERROR:
            return News(FAILED_SUBJECT, FAILED, values)
        return None


@dataclass(frozen=True)
class News:
    """One change to tell, as marked texts and their values: rendered in the reader's language."""

    subject_text: str
    line_text: str
    values: dict[str, str]

    def _values(self) -> dict[str, str]:
        return {**self.values, "item": _(self.values["item"]), "reason": _(self.values["reason"])}

    def subject(self, org: str) -> str:
        return _(self.subject_text).format(**self._values(), org=org)

    def line(self) -> str:
        return _(self.line_text).format(**self._values())


def _told_key(row: Inclusion) -> str:
    """What the owners were last told about ``row``: its state, and for a wait, what it waits for."""
    if row.state is InclusionState.WAITING:
        return f"waiting:{'agent' if row.agent_id is None else 'you'}"
    return row.state.value


@job(FOLLOW_PLAN_JOB, queue="provisioning", lock_per="org_id")
async def follow_plan(ctx: JobContext, org_id: str) -> dict[str, str]:
    """Move what the org's plan includes toward what its plan and subscription say now."""
    return await PlanProvisioning(ctx).follow(org_id)


@job(SWEEP_JOB, cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def sweep(ctx: JobContext, timestamp: int = 0) -> int:
    """Every minute: follow the orgs whose included things wait, or still run past the grace period."""
    billing = ctx.resources.plans.billing
    orgs = await InclusionRepository(ctx.uow.session).orgs_to_follow(
        datetime.now(UTC), billing.past_due_grace_hours
    )
    for org_id in orgs:
        ctx.uow.defer(FOLLOW_PLAN_JOB, org_id=org_id)
    return len(orgs)
