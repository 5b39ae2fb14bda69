"""Turn a request's credentials into a :class:`Principal`: an access token or an API key, and an org."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import User
from hutch.accounts.repository import MembershipRepository, UserRepository
from hutch.accounts.suspension import OrgSuspended, refuse_suspended_org, refuse_suspended_user
from hutch.apikeys.budget import BudgetExhausted, month_of
from hutch.apikeys.repository import ApiKeyRepository
from hutch.core.errors import Forbidden, NotFound, RateLimited, Unauthorized
from hutch.core.principal import USER_SCOPES, Principal, PrincipalKind, Scope
from hutch.core.security import InvalidAccessToken, decode_access_token, looks_like_api_key, sha256_hex
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

ORG_HEADER = "X-Org-Id"
API_KEY_HEADER = "X-API-Key"
RATE_WINDOW_SECONDS = 60
EXPIRED_SESSION = "Invalid or expired access token; log in again or refresh it."
NO_ORG = "You belong to no organisation; create one (POST /api/v1/orgs) or accept an invitation."


def credential_from(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token or API key>'.")
        return value.strip()
    api_key = request.headers.get(API_KEY_HEADER)
    return api_key.strip() if api_key else None


ACTIVITY_GRANULARITY = 300  # seconds: a user's activity is recorded at most this often


async def get_principal(request: Request, uow: UoWDep, resources: ResourcesDep) -> Principal:
    """The authenticated caller, or 401. Cached per request so several dependencies share it."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    credential = credential_from(request)
    if credential is None:
        raise Unauthorized()
    if looks_like_api_key(credential):
        principal = await _principal_from_api_key(request, uow.session, resources, credential)
    else:
        principal = await _principal_from_access_token(request, uow.session, resources, credential)
    request.state.principal = principal
    return principal


async def _principal_from_api_key(
    request: Request, session: AsyncSession, resources: Resources, key: str
) -> Principal:
    now = datetime.now(UTC)
    repo = ApiKeyRepository(session)
    api_key = await repo.by_hash_with_spend(sha256_hex(key), month_of(now))
    if api_key is None:
        raise Unauthorized("Invalid API key.")
    if api_key.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthorized("This API key has expired.")
    requested_org = request.headers.get(ORG_HEADER)
    if requested_org is not None and requested_org != api_key.org_id:
        raise NotFound("Organisation")
    if api_key.org_suspended_at is not None:
        raise OrgSuspended(api_key.org_suspension_reason)
    if (
        api_key.monthly_budget_cents is not None
        and api_key.spent_this_month_cents >= api_key.monthly_budget_cents
    ):
        raise BudgetExhausted()
    limit = api_key.rate_limit_per_minute or resources.settings.api_key_rate_limit_per_minute
    decision = await resources.rate_limiter.hit(f"api_key:{api_key.id}", limit, RATE_WINDOW_SECONDS)
    if not decision.allowed:
        raise RateLimited(
            decision.retry_after, f"Rate limit of {limit} requests per minute reached for this key."
        )
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= 60:
        await repo.touch_last_used(api_key.id, now)
    return Principal(
        kind=PrincipalKind.API_KEY,
        org_id=api_key.org_id,
        scopes=frozenset(Scope(s) for s in api_key.scopes),
        api_key_id=api_key.id,
        api_key_budget_cents=api_key.monthly_budget_cents,
        agent_ids=frozenset(api_key.agent_ids) if api_key.agent_ids is not None else None,
    )


async def _user_from_access_token(session: AsyncSession, resources: Resources, token: str) -> User:
    try:
        claims = decode_access_token(resources.settings.require_secret_key(), token)
    except InvalidAccessToken:
        raise Unauthorized(EXPIRED_SESSION) from None
    user = await UserRepository(session).get(str(claims["sub"]))
    if user is None:
        raise Unauthorized(EXPIRED_SESSION)
    issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
    # Issued before a password change. A token's ``iat`` has whole seconds, so the one the change itself
    # issued (same second) still counts; dashboard sessions are compared to the microsecond.
    if user.sessions_valid_after is not None and issued_at < user.sessions_valid_after.replace(microsecond=0):
        raise Unauthorized(EXPIRED_SESSION)
    refuse_suspended_user(user)
    now = datetime.now(UTC)
    if user.last_active_at is None or (now - user.last_active_at).total_seconds() >= ACTIVITY_GRANULARITY:
        user.last_active_at = now  # written with the request's transaction; active users count it
    return user


async def _principal_from_access_token(
    request: Request, session: AsyncSession, resources: Resources, token: str
) -> Principal:
    user = await _user_from_access_token(session, resources, token)
    memberships = MembershipRepository(session)
    requested_org = request.headers.get(ORG_HEADER)
    org_id = requested_org or await memberships.first_org_id(user.id)
    if org_id is None:
        raise NotFound(detail=NO_ORG)
    found = await memberships.with_org(org_id, user.id)
    if found is None:
        raise NotFound("Organisation")
    membership, org = found
    if not user.is_platform_admin:  # admins keep the console, to reinstate it
        refuse_suspended_org(org)
    scopes = USER_SCOPES | ({Scope.ADMIN} if user.is_platform_admin else set())
    return Principal(
        kind=PrincipalKind.USER,
        org_id=org_id,
        scopes=frozenset(scopes),
        user_id=user.id,
        org_role=membership.role.value,
        is_platform_admin=user.is_platform_admin,
    )


async def get_signed_in_user(request: Request, uow: UoWDep, resources: ResourcesDep) -> User:
    """The user behind an access token, whatever org they are (or are not) in; API keys get 403."""
    credential = credential_from(request)
    if credential is None:
        raise Unauthorized()
    if looks_like_api_key(credential):
        await get_principal(request, uow, resources)  # an invalid key is a 401 like everywhere else
        raise Forbidden("This needs a signed-in user; API keys cannot do it.")
    user = await _user_from_access_token(uow.session, resources, credential)
    requested_org = request.headers.get(ORG_HEADER)
    if (
        requested_org is not None
        and await MembershipRepository(uow.session).get(requested_org, user.id) is None
    ):
        raise NotFound("Organisation")  # the header means the same everywhere
    return user
