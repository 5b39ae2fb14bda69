"""Account endpoints: signup, login, token refresh, logout and the signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from hutch.accounts.repository import UserRepository
from hutch.accounts.schemas import (
    LoginRequest,
    Me,
    OrgOut,
    RefreshRequest,
    SignupRequest,
    SignupResponse,
    TokenPair,
    UserOut,
)
from hutch.accounts.service import AuthService
from hutch.core.authz import CurrentUser
from hutch.core.dependencies import ResourcesDep, UoWDep
from hutch.core.errors import Conflict, NotFound, RateLimited, Unauthorized, error_responses
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _service(uow: UoWDep, resources: Resources) -> AuthService:
    return AuthService(uow.session, resources.settings, resources.rate_limiter)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=SignupResponse,
    responses=error_responses(Conflict),
)
async def signup(
    body: SignupRequest, request: Request, uow: UoWDep, resources: ResourcesDep
) -> SignupResponse:
    """Create an account and its organisation; the first account of a deployment is a platform admin."""
    result = await _service(uow, resources).signup(body, _ip(request))
    user, org = result.user, result.org
    return SignupResponse(
        user=UserOut(id=user.id, email=user.email, name=user.name, is_platform_admin=user.is_platform_admin),
        org=OrgOut(id=org.id, name=org.name, plan=org.plan),
        access_token=result.tokens.access_token,
        refresh_token=result.tokens.refresh_token,
    )


@router.post("/auth/login", response_model=TokenPair, responses=error_responses(Unauthorized, RateLimited))
async def login(body: LoginRequest, request: Request, uow: UoWDep, resources: ResourcesDep) -> TokenPair:
    """Exchange email and password for an access token and a refresh token."""
    return await _service(uow, resources).login(body.email, body.password, _ip(request))


@router.post("/auth/refresh", response_model=TokenPair, responses=error_responses(Unauthorized))
async def refresh(body: RefreshRequest, uow: UoWDep, resources: ResourcesDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each works once; reusing one ends all its sessions."""
    return await _service(uow, resources).refresh(body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, uow: UoWDep, resources: ResourcesDep) -> Response:
    """Revoke a refresh token (and the tokens rotated from it)."""
    await _service(uow, resources).logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me", response_model=Me, responses=error_responses(Unauthorized, NotFound))
async def me(principal: CurrentUser, uow: UoWDep, resources: ResourcesDep) -> Me:
    """The signed-in user and the organisations they belong to."""
    assert principal.user_id is not None
    user = await UserRepository(uow.session).get(principal.user_id)
    if user is None:
        raise Unauthorized()
    orgs = await _service(uow, resources).my_orgs(user.id)
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        is_platform_admin=user.is_platform_admin,
        email_verified=user.email_verified_at is not None,
        orgs=orgs,
    )
