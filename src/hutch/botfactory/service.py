"""The bot factory's rules: the pool of creator accounts, customers' bot requests, and which account serves.

An account is "available" when it is active, not resting after BotFather's "try again in N seconds", not
busy with another conversation, and under its daily cap. Among those, the highest priority wins, then the
one used least recently, so work spreads over the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.audit.service import record_audit
from hutch.billing.plans import Plan, PlanCatalog
from hutch.billing.quotas import DAY_SECONDS, LIMIT_LABELS, Quotas
from hutch.botfactory.gateway import AccountCredentials, CreatorClients
from hutch.botfactory.models import (
    AccountStatus,
    BotRequest,
    BotVerification,
    CreatorAccount,
    RequestStatus,
)
from hutch.botfactory.repository import BotRequestRepository, CreatorAccountRepository
from hutch.channels.models import Channel
from hutch.channels.repository import ChannelRepository
from hutch.channels.telegram.usernames import display_name
from hutch.channels.telegram.verification import IssuedCode, Verifications
from hutch.core.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.ratelimit import RateLimiter
from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork

CREATE_JOB = "botfactory.create_bot"
BUSY_LEASE = timedelta(minutes=10)  # longer than any conversation: the job gives the account back sooner


class BotRequestsUsedUp(RateLimited):
    def __init__(self, plan: Plan, allowed: int, retry_after: int) -> None:
        label = LIMIT_LABELS["telegram_bot_requests_per_day"][allowed != 1]
        super().__init__(
            retry_after,
            f"The {plan.name} plan allows {allowed} {label} (bots deleted since count too); "
            "try again tomorrow (UTC) or upgrade the plan.",
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class NewAccount:
    phone: str
    api_id: int
    api_hash: str
    session: str
    priority: int = 0
    daily_cap: int = 5


class CreatorAccounts:
    """The operator's pool (platform admins only; the router checks that)."""

    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.accounts = CreatorAccountRepository(session)
        self.secret_box = secret_box

    async def add(
        self, new: NewAccount, actor: Principal | None = None, ip: str | None = None
    ) -> CreatorAccount:
        if await self.accounts.has_phone(new.phone):
            raise Conflict(f"The account {new.phone} is already in the pool.")
        account = CreatorAccount(
            id=new_id("cra"),
            phone=new.phone,
            api_id=new.api_id,
            api_hash_encrypted=self.secret_box.encrypt(new.api_hash),
            session_encrypted=self.secret_box.encrypt(new.session),
            status=AccountStatus.UNKNOWN,  # the health check (or the first use) says more
            priority=new.priority,
            daily_cap=new.daily_cap,
            created_bots=0,
        )
        self.accounts.add(account)
        await self.session.flush()
        await self._audit("creator_account_added", account, actor, ip)
        return account

    async def list(self) -> list[CreatorAccount]:
        return await self.accounts.all()

    async def get(self, account_id: str, *, for_update: bool = False) -> CreatorAccount:
        account = await self.accounts.get(account_id, for_update=for_update)
        if account is None:
            raise NotFound("Creator account")
        return account

    async def update(
        self,
        account_id: str,
        *,
        priority: int | None = None,
        daily_cap: int | None = None,
        status: AccountStatus | None = None,
        session: str | None = None,
        actor: Principal | None = None,
        ip: str | None = None,
    ) -> CreatorAccount:
        account = await self.get(account_id, for_update=True)
        changed: dict[str, object] = {}
        if priority is not None:
            account.priority = changed["priority"] = priority
        if daily_cap is not None:
            account.daily_cap = changed["daily_cap"] = daily_cap
        if session is not None:
            account.session_encrypted = self.secret_box.encrypt(session)
            changed["session"] = "replaced"
        if status is not None and status is not account.status:
            account.status = status
            changed["status"] = status.value
            if status is AccountStatus.ACTIVE:  # an admin vouches for it again
                account.last_error, account.resting_until = None, None
        await self.session.flush()
        if changed:
            await self._audit("creator_account_changed", account, actor, ip, changed)
        return account

    async def delete(self, account_id: str, actor: Principal | None = None, ip: str | None = None) -> None:
        account = await self.get(account_id)
        await self._audit("creator_account_removed", account, actor, ip)
        await self.accounts.delete(account)

    async def _audit(
        self,
        action: str,
        account: CreatorAccount,
        actor: Principal | None,
        ip: str | None,
        details: dict[str, object] | None = None,
    ) -> None:
        await record_audit(
            self.session,
            action=action,
            actor_user_id=actor.user_id if actor else None,
            actor_api_key_id=actor.api_key_id if actor else None,
            target=account.id,
            ip=ip,
            details={"phone": account.phone, **(details or {})},
        )

    async def made_today(self) -> dict[str, int]:
        """Bots each account made since midnight UTC."""
        return await self.accounts.made_since(start_of_day(utcnow()))

    def credentials(self, account: CreatorAccount) -> AccountCredentials:
        return AccountCredentials(
            phone=account.phone,
            api_id=account.api_id,
            api_hash=self.secret_box.decrypt(account.api_hash_encrypted),
            session=self.secret_box.decrypt(account.session_encrypted),
        )

    async def check(
        self, account: CreatorAccount, clients: CreatorClients, *, by_admin: bool = False
    ) -> AccountStatus | None:
        """Ask Telegram about the account and record the answer; the status when it just became locked or
        banned. The periodic check never unlocks an account; an admin's check records the answer as is."""
        report = await clients.check(self.credentials(account))
        account.last_checked_at = utcnow()
        new = report.status
        if not by_admin and account.status is AccountStatus.LOCKED and new is not AccountStatus.BANNED:
            new = AccountStatus.LOCKED
        changed = new is not account.status
        account.status = new
        if report.detail or by_admin:
            account.last_error = report.detail
        return new if changed and new in (AccountStatus.LOCKED, AccountStatus.BANNED) else None

    async def take_available(self, exclude: set[str]) -> CreatorAccount | None:
        """Reserve the best available account for one conversation (the caller commits the reservation)."""
        now = utcnow()
        account = await self.accounts.best_available_for_update(now, start_of_day(now), exclude)
        if account is not None:
            account.busy_until, account.last_used_at = now + BUSY_LEASE, now
        return account

    async def usable_count(self) -> int:
        return await self.accounts.usable_count()


class BotRequests:
    """Customers' side: ask for a bot for an agent, and read how it went."""

    def __init__(
        self,
        uow: UnitOfWork,
        secret_box: SecretBox,
        plans: PlanCatalog | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.requests = BotRequestRepository(uow.session)
        self.secret_box = secret_box
        # To refuse a bot past the plan's telegram_bots, or past its telegram_bot_requests_per_day (counted
        # on the limiter), before making it.
        self.plans = plans
        self.limiter = limiter

    async def _agent(self, principal: Principal, agent_id: str) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def request(self, principal: Principal, agent_id: str, name: str | None) -> BotRequest:
        agent = await self._agent(principal, agent_id)
        if await self.requests.agent_has_bot(agent.id):
            raise Conflict("This agent already has a Telegram bot; remove it before asking for a new one.")
        quotas = Quotas(self.session, self.plans, self.limiter) if self.plans is not None else None
        if quotas is not None:
            channels = ChannelRepository(self.session)
            await quotas.check_count(
                agent.org_id, "telegram_bots", lambda: channels.telegram_bots_in_org(agent.org_id)
            )
        if await CreatorAccounts(self.session, self.secret_box).usable_count() == 0:
            raise ServiceUnavailable(
                "Automatic bot creation is not available on this deployment; create a bot with @BotFather "
                "and connect it with its token (POST /api/v1/agents/{id}/channels/telegram)."
            )
        if await self.requests.open_for_agent(agent.id) is not None:
            raise Conflict("A bot is already being created for this agent; wait for it to finish.")
        if quotas is not None:  # last: a request refused for another reason uses none of the day's
            await self._within_the_day(quotas, agent.org_id)
        request = BotRequest(
            id=new_id("btr"),
            org_id=agent.org_id,
            agent_id=agent.id,
            status=RequestStatus.QUEUED,
            bot_name=display_name(name or agent.name),
            username_base=(name or agent.name)[:64],
        )
        self.requests.add(request)
        await self.session.flush()
        self.uow.defer(CREATE_JOB, request_id=request.id)
        return request

    async def _within_the_day(self, quotas: Quotas, org_id: str) -> None:
        """Refuse (429 until midnight UTC) a request past the plan's ``telegram_bot_requests_per_day``. The
        count is the limiter's, by org: requests for bots (and agents) deleted since still count, so making,
        deleting and asking again cannot use the operator's creator accounts without end."""
        plan = await quotas.plan_of(org_id)
        allowed = plan.limit("telegram_bot_requests_per_day")
        if allowed is None:
            return
        decision = await quotas.limiter_hit(f"bot-requests:{org_id}", allowed, DAY_SECONDS)
        if decision is not None and not decision.allowed:
            raise BotRequestsUsedUp(plan, allowed, decision.retry_after)

    async def latest(self, principal: Principal, agent_id: str) -> BotRequest:
        agent = await self._agent(principal, agent_id)
        request = await self.requests.latest_for_agent(agent.id)
        if request is None:
            raise NotFound("Bot request", "No bot was requested for this agent yet.")
        return request

    async def verification(self, request: BotRequest) -> tuple[BotVerification, IssuedCode | None] | None:
        """The new bot's ownership check, and its code while it can still be used."""
        if request.channel_id is None:
            return None
        verification = await self.session.get(BotVerification, request.channel_id)
        channel = await self.session.get(Channel, request.channel_id)
        if verification is None or channel is None:
            return None
        return verification, Verifications(self.session, self.secret_box).shown(verification, channel)

    async def renew_code(self, principal: Principal, agent_id: str, lifetime: timedelta) -> BotRequest:
        """A new verification code for the agent's new bot (the old one stops working)."""
        request = await self.latest(principal, agent_id)
        channel = await self.session.get(Channel, request.channel_id) if request.channel_id else None
        if channel is None:
            raise Conflict("The bot is not ready yet; a code is issued when it is created.")
        await Verifications(self.session, self.secret_box).issue(channel, lifetime)
        return request
