"""Billing use cases without Stripe: plans, usage against limits, the prepaid balance, admin grants."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.audit.service import record_audit
from hutch.billing.inclusions import follow_plan
from hutch.billing.inclusions_repository import InclusionRepository, InclusionView
from hutch.billing.ledger import Ledger
from hutch.billing.models import (
    BillingAccount,
    InclusionState,
    LedgerEntry,
    LedgerKind,
    LedgerUnit,
    RevenueEvent,
    SubscriptionStatus,
)
from hutch.billing.plans import Package, Plan, PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.billing.repository import BillingRepository, PlanRecordRepository, RevenueRepository
from hutch.billing.schemas import (
    BalanceOut,
    GrantRequest,
    InclusionOut,
    PackageOut,
    PlanOut,
    SubscriptionOut,
    UsageOut,
)
from hutch.core.errors import BadRequest, NotFound
from hutch.core.principal import Principal
from hutch.db.engine import Database, UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.runtimes.models import RuntimeStatus
from hutch.settings import Settings


async def mirror_plans(database: Database, plans: PlanCatalog) -> None:
    """Write the loaded plans to the ``plans`` table; plans gone from the file stay, marked inactive."""
    async with database.sessionmaker() as session, session.begin():
        records = PlanRecordRepository(session)
        for plan in plans.plans:
            await records.upsert(plan)
        await records.deactivate_others(p.id for p in plans.plans)


def stripe_configured(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None


def plan_out(plan: Plan, settings: Settings) -> PlanOut:
    return PlanOut(
        id=plan.id,
        name=plan.name,
        price_cents=plan.price_cents,
        interval=plan.interval,
        trial_days=plan.trial_days,
        trial_hours=plan.trial_hours,
        pay_per_use=plan.pay_per_use,
        available=not plan.is_paid or stripe_configured(settings),
        limits=plan.limits.model_dump(),
        includes=list(plan.includes),
    )


def package_out(package: Package, settings: Settings) -> PackageOut:
    return PackageOut(
        id=package.id,
        name=package.name,
        price_cents=package.price_cents,
        credits_cents=package.credits_cents,
        seconds=package.seconds,
        available=stripe_configured(settings),
    )


INCLUDED_LABELS = {"runtime": "Dedicated runtime", "telegram_bot": "Telegram bot"}
# A runtime's own status, for an included runtime.
RUNTIME_STATES = {
    RuntimeStatus.PROVISIONING: "provisioning",
    RuntimeStatus.READY: "ready",
    RuntimeStatus.ERROR: "error",
    RuntimeStatus.STOPPED: "suspended",
}


def inclusion_out(view: InclusionView) -> InclusionOut:
    """The row as the customer reads it; an included runtime's state is the runtime's own, as it is now
    (the runtimes' lifecycle moves it between the flow's visits: ready, restarted, stopped, restored)."""
    row = view.inclusion
    state, detail = row.state.value, row.detail
    if row.item == "runtime" and row.state not in (InclusionState.WAITING, InclusionState.ERROR):
        if view.runtime_status is not None:
            state = RUNTIME_STATES[view.runtime_status]
            if view.runtime_status is RuntimeStatus.READY:
                detail = None
            elif row.state is not InclusionState.SUSPENDED:
                detail = view.runtime_error
        elif row.state is not InclusionState.SUSPENDED:
            state = "removed"
            detail = "The runtime was removed; the next payment or plan change starts a new one."
    return InclusionOut(
        item=row.item,
        label=INCLUDED_LABELS.get(row.item, row.item),
        state=state,
        detail=detail,
        agent_id=row.agent_id,
        agent_name=view.agent_name,
        bot_username=view.bot_username,
        updated_at=row.updated_at,
    )


def entry_description(kind: LedgerKind, reason: str) -> str:
    return f"{kind.value.capitalize()}: {reason}"


async def find_org(session: AsyncSession, ref: str) -> Org:
    """An org by id, or the first org of the user with this email (for operator commands)."""
    org = await session.get(Org, ref)
    if org is None and "@" in ref:
        org = await BillingRepository(session).first_org_of_email(ref.strip().lower())
    if org is None:
        raise NotFound(detail=f"No organisation with id '{ref}' and no user with that email in one.")
    return org


class BillingService:
    def __init__(self, uow: UnitOfWork, plans: PlanCatalog, settings: Settings) -> None:
        self.uow = uow
        self.session = uow.session
        self.plans = plans
        self.settings = settings
        self.quotas = Quotas(uow.session, plans)
        self.repository = BillingRepository(uow.session)
        self.ledger = Ledger(uow, low_balance_threshold_cents=plans.billing.low_balance_threshold_cents)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> BillingService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow, resources.plans, resources.settings)

    async def usage(self, principal: Principal) -> UsageOut:
        plan = await self.quotas.plan_of(principal.org_id)
        metered = await self.quotas.usage(principal.org_id)
        agents = await self.repository.count_agents(principal.org_id)
        dedicated = await self.repository.count_agents(principal.org_id, placement="dedicated")
        per_agent = await self.repository.documents_per_agent(principal.org_id)
        return UsageOut(
            plan=plan.id,
            limits=plan.limits.model_dump(),
            usage={
                "agents": agents,
                "dedicated_runtimes": dedicated,
                "messages_this_month": metered["messages_this_month"],
                "messages_today": metered["messages_today"],
                "input_tokens_this_month": metered["input_tokens_this_month"],
                "output_tokens_this_month": metered["output_tokens_this_month"],
                "cost_micro_usd_this_month": metered["cost_micro_usd_this_month"],
                "voice_seconds": metered["voice_seconds_this_month"],
                "tool_calls_this_month": metered["tool_calls_this_month"],
                "tool_cost_micro_usd_this_month": metered["tool_cost_micro_usd_this_month"],
                "transcription_minutes_this_month": -(-metered["transcription_seconds_this_month"] // 60),
                "transcription_cost_micro_usd_this_month": metered["transcription_cost_micro_usd_this_month"],
                "documents": sum(documents for _, documents, _ in per_agent),
                "documents_per_agent": {agent_id: documents for agent_id, documents, _ in per_agent},
                "storage_mb": round(sum(size for _, _, size in per_agent) / (1024 * 1024), 3),
            },
        )

    async def payments(self, org_id: str, limit: int) -> list[RevenueEvent]:
        """What the organisation paid (subscriptions and purchases), newest first."""
        return await RevenueRepository(self.session).of_org(org_id, limit)

    async def balance(self, org_id: str) -> BalanceOut:
        balance = await self.ledger.balance(org_id)
        return BalanceOut(credits_cents=balance.credits_cents, seconds=balance.seconds)

    async def subscription(self, org_id: str) -> SubscriptionOut:
        org_plan, account = await self.repository.plan_and_account(org_id)
        plan = org_plan or "free"
        includes = await self.included(org_id)
        if account is None:
            return SubscriptionOut(
                plan=plan,
                status="none",
                current_period_end=None,
                cancel_at_period_end=False,
                includes=includes,
            )
        return SubscriptionOut(
            plan=plan,
            status=account.status.value,
            current_period_end=account.current_period_end,
            cancel_at_period_end=account.cancel_at_period_end,
            trial_end=account.trial_end,
            past_due_since=account.past_due_since,
            includes=includes,
        )

    async def included(self, org_id: str) -> list[InclusionOut]:
        """What the org's plans provisioned, each with its state (a runtime's as the runtime reports it)."""
        return [inclusion_out(view) for view in await InclusionRepository(self.session).views(org_id)]

    async def grant(
        self, org_id: str, body: GrantRequest, actor: Principal | None, ip: str | None
    ) -> list[LedgerEntry]:
        """Add credits and/or time to an org, as a platform admin; written to the ledger and the audit log."""
        if await self.session.get(Org, org_id) is None:
            raise NotFound("Organisation")
        entries = []
        for unit, amount in ((LedgerUnit.CREDITS, body.credits_cents), (LedgerUnit.SECONDS, body.seconds)):
            if amount:
                entries.append(
                    await self.ledger.post(
                        org_id,
                        unit,
                        LedgerKind.GRANT,
                        amount,
                        description=entry_description(LedgerKind.GRANT, body.reason),
                        actor_user_id=actor.user_id if actor else None,
                    )
                )
        await record_audit(
            self.session,
            action="billing_grant",
            org_id=org_id,
            actor_user_id=actor.user_id if actor else None,
            actor_api_key_id=actor.api_key_id if actor else None,
            target=org_id,
            ip=ip,
            details={"credits_cents": body.credits_cents, "seconds": body.seconds, "reason": body.reason},
        )
        return entries

    async def org_ledger(self, org_id: str, skip: int, limit: int) -> tuple[list[LedgerEntry], int]:
        """An org's ledger entries, newest first, as a platform admin sees them (404 for an unknown org)."""
        if await self.session.get(Org, org_id) is None:
            raise NotFound("Organisation")
        return await self.ledger.entries(org_id, skip, limit)

    async def assign_plan(
        self, org_id: str, plan_id: str, actor: Principal | None, ip: str | None, *, provision: bool = True
    ) -> Org:
        """Put an org on a plan by hand (no Stripe involved), as a platform admin; what the plan includes is
        provisioned as for a subscription (unless ``provision`` is false: made-up demo orgs)."""
        plan = self.plans.plan(plan_id)
        if plan is None:
            known = ", ".join(p.id for p in self.plans.plans)
            raise BadRequest(f"Unknown plan '{plan_id}'; plans are: {known}.")
        org = await self.session.get(Org, org_id, with_for_update=True)
        if org is None:
            raise NotFound("Organisation")
        previous, org.plan = org.plan, plan.id
        account = await self.session.get(BillingAccount, org_id, with_for_update=True)
        if account is not None and account.status is SubscriptionStatus.CANCELED:
            # The plan is the admin's now, no longer an ended subscription's.
            account.status = SubscriptionStatus.NONE
        await self.session.flush()
        if provision:
            follow_plan(self.uow, org_id)
        await record_audit(
            self.session,
            action="plan_assigned",
            org_id=org_id,
            actor_user_id=actor.user_id if actor else None,
            actor_api_key_id=actor.api_key_id if actor else None,
            target=org_id,
            ip=ip,
            details={"from": previous, "to": plan.id},
        )
        return org
