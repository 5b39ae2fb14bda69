"""Making a requested bot (one account after another), and watching the creator accounts' health."""

from __future__ import annotations

from datetime import timedelta

import structlog
from telegram.error import TelegramError

from hutch.accounts.models import Org
from hutch.agents.models import Agent, AgentAvatar
from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.billing.inclusions import follow_plan
from hutch.billing.inclusions_repository import InclusionRepository
from hutch.botfactory.botfather import (
    AccountProblem,
    AccountRestricted,
    CreatedBot,
    NewBotConversation,
    Profile,
    TooManyAttempts,
    UsernamesExhausted,
)
from hutch.botfactory.models import AccountStatus, BotRequest, CreatorAccount, RequestStatus
from hutch.botfactory.service import CREATE_JOB, CreatorAccounts, utcnow
from hutch.channels.models import ChannelStatus
from hutch.channels.telegram.profile import bot_profile, dress_bot
from hutch.channels.telegram.service import TelegramChannels
from hutch.channels.telegram.usernames import candidates
from hutch.channels.telegram.verification import Verifications
from hutch.core.errors import HutchError, ServiceUnavailable
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import JobContext, job
from hutch.i18n import use_language

log = structlog.get_logger(__name__)
NONE_AVAILABLE = (
    "No Telegram account of the bot factory is available right now. Try again later, or create a bot with "
    "@BotFather and connect it with its token."
)


async def _alert_account(uow: UnitOfWork, account: CreatorAccount, status: AccountStatus, why: str) -> None:
    severity = Severity.CRITICAL if status is AccountStatus.BANNED else Severity.WARNING
    await raise_alert(
        uow,
        "botfactory.account",
        severity,
        f"Bot factory account {account.phone} is {status.value}",
        f"{why}. It is skipped until an admin sets it active again (PATCH /api/v1/admin/creator-accounts/"
        f"{account.id}).",
        dedup_key=f"botfactory.account:{account.id}:{status.value}",
    )


async def _check_pool(ctx: JobContext) -> None:
    """Alert when fewer creator accounts are usable than the operator wants (if the factory is in use)."""
    accounts = CreatorAccounts(ctx.uow.session, ctx.resources.secret_box)
    everyone = await accounts.list()
    usable = sum(a.status in (AccountStatus.ACTIVE, AccountStatus.UNKNOWN) for a in everyone)
    wanted = ctx.settings.botfactory_min_active_accounts
    if everyone and usable < wanted:
        await raise_alert(
            ctx.uow,
            "botfactory.pool_low",
            Severity.CRITICAL if usable == 0 else Severity.WARNING,
            f"Bot factory: {usable} usable creator account(s) left",
            f"{usable} of {len(everyone)} creator accounts can make bots; at least {wanted} are wanted "
            "(HUTCH_BOTFACTORY_MIN_ACTIVE_ACCOUNTS). Add accounts with `hutch botfactory add-account`.",
            dedup_key="botfactory.pool_low",
        )


def _fail(request: BotRequest, error: str) -> str:
    request.status, request.error, request.finished_at = RequestStatus.FAILED, error, utcnow()
    return "failed"


def _note(request: BotRequest, line: str) -> None:
    request.notes = "\n".join(filter(None, [request.notes, line]))[-4000:]


async def _profile(ctx: JobContext, agent: Agent, org: Org | None) -> Profile:
    """The new bot's descriptions, in the org's language (what its bots say by themselves)."""
    avatar = await ctx.uow.session.get(AgentAvatar, agent.id)
    with use_language(ctx.settings, org.language if org is not None else None):
        _name, description, about = bot_profile(agent.name)
    return Profile(description=description, about=about, photo=avatar.data if avatar is not None else None)


async def _dress(ctx: JobContext, request: BotRequest, agent: Agent, token: str) -> None:
    """The menu and descriptions, for everyone in the org's language and in each language Hutch speaks,
    through the Bot API (BotFather's chat sets one language only; the name and photo it set stay). A
    courtesy: Telegram refusing them does not undo the bot, and a retried job sets them again."""
    org = await ctx.uow.session.get(Org, request.org_id)
    language = org.language if org is not None else None
    try:
        await dress_bot(ctx.resources.telegram, ctx.settings, token, agent.name, language, name=False)
    except TelegramError as error:
        _note(request, f"the menu and descriptions were not set: {error}")
        log.warning("a made bot's menu was not set", request_id=request.id, error=str(error))


async def _ask_botfather(ctx: JobContext, request: BotRequest, agent: Agent) -> CreatedBot | None:
    """One account after another until one makes the bot; None when the request failed (recorded)."""
    session = ctx.uow.session
    accounts = CreatorAccounts(session, ctx.resources.secret_box)
    org = await session.get(Org, request.org_id)
    usernames = candidates(request.username_base, org.name if org else None)
    profile = await _profile(ctx, agent, org)
    tried: set[str] = set()
    while True:
        account = await accounts.take_available(tried)
        if account is None:
            await raise_alert(
                ctx.uow,
                "botfactory.exhausted",
                Severity.CRITICAL,
                "Bot factory: no creator account could make a bot",
                f"Request {request.id} failed after trying {len(tried)} account(s); see the accounts' last "
                "errors in the admin console.",
                dedup_key="botfactory.exhausted",
            )
            await _check_pool(ctx)
            _fail(request, NONE_AVAILABLE)
            return None
        tried.add(account.id)
        credentials = accounts.credentials(account)
        await ctx.uow.checkpoint()  # the reservation: other jobs skip this account while it talks
        conversation_timeout = ctx.settings.botfactory_step_timeout
        try:
            async with ctx.resources.creator_clients.botfather(credentials) as chat:
                bot = await NewBotConversation(chat, step_timeout=conversation_timeout).create(
                    request.bot_name, usernames, profile
                )
        except UsernamesExhausted as error:
            account.busy_until = None
            _fail(request, str(error))
            return None
        except TooManyAttempts as error:
            account.resting_until = utcnow() + timedelta(seconds=error.seconds)
            account.last_error = str(error)
            _note(request, f"{account.phone}: {error}")
        except AccountRestricted as error:
            account.status, account.last_error = AccountStatus.LOCKED, str(error)
            _note(request, f"{account.phone}: {error}")
            await _alert_account(ctx.uow, account, AccountStatus.LOCKED, str(error))
        except (AccountProblem, OSError) as error:  # silence, odd answers, a lost connection
            account.last_error = f"{error.__class__.__name__}: {error}"[:1000]
            _note(request, f"{account.phone}: {account.last_error}")
        else:
            account.busy_until, account.last_error = None, None
            account.status = AccountStatus.ACTIVE
            account.created_bots += 1
            request.account_id, request.bot_username = account.id, bot.username
            request.token_encrypted = ctx.resources.secret_box.encrypt(bot.token)
            for line in bot.notes:
                _note(request, f"{account.phone}: {line}")
            await ctx.uow.checkpoint()  # the token is safe before anything else can fail
            return bot
        account.busy_until = None
        log.warning(
            "creator account failed; trying the next", account_id=account.id, error=account.last_error
        )
        await ctx.uow.checkpoint()


@job(CREATE_JOB, queue="botfactory", lock_per="request_id", retry=3)
async def create_bot(ctx: JobContext, request_id: str) -> str:
    """Make the bot with BotFather, connect it to the agent (waiting for its owner), issue the code. A bot a
    plan includes goes back to the provisioning flow, which tells the owners."""
    outcome = await _create_bot(ctx, request_id)
    request = await ctx.uow.session.get(BotRequest, request_id)
    if (
        outcome in ("created", "failed")
        and request is not None
        and await InclusionRepository(ctx.uow.session).by_bot_request(request_id) is not None
    ):
        follow_plan(ctx.uow, request.org_id)
    return outcome


async def _create_bot(ctx: JobContext, request_id: str) -> str:
    session = ctx.uow.session
    request = await session.get(BotRequest, request_id, with_for_update=True)
    if request is None or request.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED):
        return "done"
    agent = await session.get(Agent, request.agent_id)
    if agent is None:
        return _fail(request, "The agent was deleted.")
    if request.token_encrypted is None:
        request.status = RequestStatus.CREATING
        if await _ask_botfather(ctx, request, agent) is None:
            return "failed"
    assert request.token_encrypted is not None
    token = ctx.resources.secret_box.decrypt(request.token_encrypted)
    channels = TelegramChannels.of(ctx.uow, ctx.resources)
    try:
        channel = await channels.bind(agent, token, ChannelStatus.UNVERIFIED)
    except ServiceUnavailable:
        raise  # Telegram is down: the job retries with the token it kept
    except HutchError as error:
        return _fail(request, f"The new bot @{request.bot_username} could not be connected: {error.detail}")
    await _dress(ctx, request, agent, token)
    lifetime = timedelta(hours=ctx.settings.botfactory_verification_hours)
    await Verifications(session, ctx.resources.secret_box).issue(channel, lifetime)
    request.status, request.channel_id, request.finished_at = RequestStatus.SUCCEEDED, channel.id, utcnow()
    request.token_encrypted = None  # the channel holds it now
    return "created"


@job("botfactory.check_accounts", cron="*/15 * * * *", queue="botfactory", retry=False)
async def check_accounts(ctx: JobContext, timestamp: int = 0) -> dict[str, str]:
    """Every 15 minutes: ask Telegram about each account (``get_me``); alert on a lock or a ban, and when
    too few accounts are left. A locked account comes back only when an admin sets it active."""
    accounts = CreatorAccounts(ctx.uow.session, ctx.resources.secret_box)
    seen: dict[str, str] = {}
    for account in await accounts.list():
        if account.status is AccountStatus.BANNED:
            seen[account.id] = account.status.value
            continue
        newly = await accounts.check(account, ctx.resources.creator_clients)
        if newly is not None:
            await _alert_account(ctx.uow, account, newly, account.last_error or "Telegram says so")
        seen[account.id] = account.status.value
    await _check_pool(ctx)
    return seen
