"""The bot factory's API: the creator-account pool (platform admins) and automatic bots (customers)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from hutch.botfactory.models import AccountStatus, BotRequest, CreatorAccount, RequestStatus
from hutch.botfactory.schemas import CreatorAccountCreate, CreatorAccountUpdate
from hutch.botfactory.service import BotRequests, CreatorAccounts, NewAccount
from hutch.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    error_responses,
)
from hutch.core.request_context import client_ip
from hutch.http.authz import PlatformAdmin, Writer
from hutch.http.dependencies import ResourcesDep, UoWDep

admin_router = APIRouter(prefix="/api/v1/admin/creator-accounts", tags=["bot factory"])
router = APIRouter(prefix="/api/v1/agents/{agent_id}/channels/telegram/auto", tags=["bot factory"])
ADMIN_ONLY = error_responses(Unauthorized, Forbidden)
ACCOUNT_ERRORS = error_responses(Unauthorized, Forbidden, NotFound)


class CreatorAccountOut(BaseModel):
    """An account of the pool; its api_hash and session are never shown."""

    id: str
    phone: str
    api_id: int
    status: AccountStatus
    priority: int
    daily_cap: int
    created_today: int
    created_bots: int
    last_used_at: datetime | None
    last_checked_at: datetime | None
    last_error: str | None
    resting_until: datetime | None
    created_at: datetime


class CreatorAccountList(BaseModel):
    items: list[CreatorAccountOut]
    total: int


def _account_out(account: CreatorAccount, made_today: dict[str, int]) -> CreatorAccountOut:
    return CreatorAccountOut(
        id=account.id,
        phone=account.phone,
        api_id=account.api_id,
        status=account.status,
        priority=account.priority,
        daily_cap=account.daily_cap,
        created_today=made_today.get(account.id, 0),
        created_bots=account.created_bots,
        last_used_at=account.last_used_at,
        last_checked_at=account.last_checked_at,
        last_error=account.last_error,
        resting_until=account.resting_until,
        created_at=account.created_at,
    )


async def creator_accounts(_: PlatformAdmin, uow: UoWDep, resources: ResourcesDep) -> CreatorAccounts:
    """The pool, for platform admins only."""
    return CreatorAccounts(uow.session, resources.secret_box)


Pool = Annotated[CreatorAccounts, Depends(creator_accounts)]


@admin_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatorAccountOut,
    responses=error_responses(Unauthorized, Forbidden, Conflict),
)
async def add_account(
    body: CreatorAccountCreate, request: Request, admin: PlatformAdmin, pool: Pool
) -> CreatorAccountOut:
    """Add a logged-in Telegram account to the pool (`hutch botfactory add-account` logs one in and adds
    it). The api_hash and session are stored encrypted and never shown again. Audited."""
    account = await pool.add(NewAccount(**body.model_dump()), admin, client_ip(request))
    return _account_out(account, {})


@admin_router.get("", response_model=CreatorAccountList, responses=ADMIN_ONLY)
async def list_accounts(pool: Pool) -> CreatorAccountList:
    """The pool, best first: status, usage today against the daily cap, the last error."""
    accounts, made = await pool.list(), await pool.made_today()
    return CreatorAccountList(items=[_account_out(a, made) for a in accounts], total=len(accounts))


@admin_router.get(
    "/{account_id}",
    response_model=CreatorAccountOut,
    responses=ACCOUNT_ERRORS,
)
async def get_account(account_id: str, pool: Pool) -> CreatorAccountOut:
    return _account_out(await pool.get(account_id), await pool.made_today())


@admin_router.patch(
    "/{account_id}",
    response_model=CreatorAccountOut,
    responses=ACCOUNT_ERRORS,
)
async def update_account(
    account_id: str, body: CreatorAccountUpdate, request: Request, admin: PlatformAdmin, pool: Pool
) -> CreatorAccountOut:
    """Change priority or daily cap, set an account active again (or aside), or give it a new session.
    Audited."""
    account = await pool.update(
        account_id, **body.model_dump(exclude_unset=True), actor=admin, ip=client_ip(request)
    )
    return _account_out(account, await pool.made_today())


@admin_router.post(
    "/{account_id}/check",
    response_model=CreatorAccountOut,
    responses=ACCOUNT_ERRORS,
)
async def check_account(account_id: str, pool: Pool, resources: ResourcesDep) -> CreatorAccountOut:
    """Ask Telegram about the account now (as the periodic health check does) and record the answer."""
    account = await pool.get(account_id, for_update=True)
    await pool.check(account, resources.creator_clients, by_admin=True)
    return _account_out(account, await pool.made_today())


@admin_router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ACCOUNT_ERRORS,
)
async def delete_account(account_id: str, request: Request, admin: PlatformAdmin, pool: Pool) -> Response:
    """Remove an account from the pool (its bots keep working: they belong to their agents now). Audited."""
    await pool.delete(account_id, admin, client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- customers ----------------------------------------------------------------------------------------


class AutoBotCreate(BaseModel):
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The bot's shown name (and the base of its username); the agent's name by default.",
    )


class VerificationOut(BaseModel):
    verified: bool
    owner_username: str | None = None
    code: str | None = Field(
        default=None, description="Send it to the bot (or open deep_link) to become its owner; single use."
    )
    deep_link: str | None = None
    expires_at: datetime | None = None


class BotRequestOut(BaseModel):
    id: str
    agent_id: str
    status: RequestStatus
    bot_name: str
    bot_username: str | None
    channel_id: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    verification: VerificationOut | None


async def _request_out(requests: BotRequests, request: BotRequest) -> BotRequestOut:
    out = BotRequestOut(
        id=request.id,
        agent_id=request.agent_id,
        status=request.status,
        bot_name=request.bot_name,
        bot_username=request.bot_username if request.status is RequestStatus.SUCCEEDED else None,
        channel_id=request.channel_id,
        error=request.error,
        created_at=request.created_at,
        finished_at=request.finished_at,
        verification=None,
    )
    found = await requests.verification(request)
    if found is not None:
        verification, shown = found
        out.verification = VerificationOut(
            verified=verification.verified_at is not None,
            owner_username=verification.owner_username,
            code=shown.code if shown else None,
            deep_link=shown.deep_link if shown else None,
            expires_at=verification.expires_at if verification.verified_at is None else None,
        )
    return out


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BotRequestOut,
    responses=error_responses(
        Unauthorized, Forbidden, NotFound, Conflict, PaymentRequired, RateLimited, ServiceUnavailable
    ),
)
async def request_bot(
    agent_id: str, body: AutoBotCreate, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> BotRequestOut:
    """Have Hutch create a Telegram bot for the agent (no @BotFather needed). It takes up to a minute: read
    the outcome with GET; when it succeeded, send the verification code to the bot to become its owner.
    402 past the plan's `telegram_bots`; 429 (until midnight UTC) past its `telegram_bot_requests_per_day`."""
    requests = BotRequests(uow, resources.secret_box, resources.plans, resources.rate_limiter)
    request = await requests.request(principal, agent_id, body.name)
    return await _request_out(requests, request)


@router.get("", response_model=BotRequestOut, responses=error_responses(Unauthorized, Forbidden, NotFound))
async def latest_bot_request(
    agent_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> BotRequestOut:
    """The agent's latest bot request: queued, creating, succeeded (with the bot and its verification code
    while unverified) or failed (with the reason)."""
    requests = BotRequests(uow, resources.secret_box)
    return await _request_out(requests, await requests.latest(principal, agent_id))


@router.post(
    "/code",
    response_model=BotRequestOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict),
)
async def new_verification_code(
    agent_id: str, principal: Writer, uow: UoWDep, resources: ResourcesDep
) -> BotRequestOut:
    """A new verification code for the agent's new bot (the old one stops working); 409 once verified."""
    requests = BotRequests(uow, resources.secret_box)
    lifetime = timedelta(hours=resources.settings.botfactory_verification_hours)
    request = await requests.renew_code(principal, agent_id, lifetime)
    return await _request_out(requests, request)
