"""Account endpoints: signup, login, tokens, email verification, password reset and the signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from hutch.accounts.email_links import EmailLinks, InvalidLink
from hutch.accounts.schemas import (
    Accepted,
    EmailVerification,
    EmailVerified,
    LoginRequest,
    Me,
    OrgOut,
    PasswordChange,
    PasswordReset,
    PasswordResetRequest,
    ProfileUpdate,
    RefreshRequest,
    SignupRequest,
    SignupResponse,
    TokenPair,
    UserOut,
)
from hutch.accounts.service import AuthService, normalise_email
from hutch.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidField,
    RateLimited,
    Unauthorized,
    error_responses,
)
from hutch.core.request_context import client_ip
from hutch.http.authz import SignedInUser
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.resources import Resources

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _auth(uow: UoWDep, resources: Resources) -> AuthService:
    return AuthService(uow, resources.settings, resources.rate_limiter, resources.secret_box)


def _links(uow: UoWDep, resources: Resources) -> EmailLinks:
    return EmailLinks(uow, resources.settings, resources.secret_box, resources.rate_limiter)


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=SignupResponse,
    responses=error_responses(Conflict, BadRequest, Forbidden),
)
async def signup(
    body: SignupRequest, request: Request, uow: UoWDep, resources: ResourcesDep
) -> SignupResponse:
    """Create an account and its organisation (or join the org of `invitation_token`).

    The first account of a deployment is a platform admin. A verification email is sent.
    """
    result = await _auth(uow, resources).signup(body, client_ip(request))
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
    return await _auth(uow, resources).login(body.email, body.password, client_ip(request))


@router.post("/auth/refresh", response_model=TokenPair, responses=error_responses(Unauthorized))
async def refresh(body: RefreshRequest, uow: UoWDep, resources: ResourcesDep) -> TokenPair:
    """Trade a refresh token for a new pair. Each works once; reusing one ends all its sessions."""
    return await _auth(uow, resources).refresh(body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, uow: UoWDep, resources: ResourcesDep) -> Response:
    """Revoke a refresh token (and the tokens rotated from it)."""
    await _auth(uow, resources).logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/verify-email/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=error_responses(Unauthorized, Forbidden, Conflict, RateLimited),
)
async def send_verification_email(user: SignedInUser, uow: UoWDep, resources: ResourcesDep) -> Accepted:
    """Email a new verification link to the signed-in user (older links stop working)."""
    await _links(uow, resources).send_verification(user)
    return Accepted(detail=f"A verification link is on its way to {user.email}.")


@router.post("/auth/verify-email", response_model=EmailVerified, responses=error_responses(InvalidLink))
async def verify_email(body: EmailVerification, uow: UoWDep, resources: ResourcesDep) -> EmailVerified:
    """Confirm an email address with the token from the verification link."""
    await _links(uow, resources).verify_email(body.token)
    return EmailVerified(email_verified=True)


@router.post(
    "/auth/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, uow: UoWDep, resources: ResourcesDep
) -> Accepted:
    """Email a password-reset link. The answer is the same whether or not the account exists."""
    await _links(uow, resources).request_password_reset(normalise_email(body.email), client_ip(request))
    return Accepted(detail="If an account exists for this address, a reset link is on its way.")


@router.post("/auth/password-reset", response_model=Accepted, responses=error_responses(InvalidLink))
async def reset_password(
    body: PasswordReset, request: Request, uow: UoWDep, resources: ResourcesDep
) -> Accepted:
    """Set a new password with the token from the reset link; every existing session ends."""
    await _links(uow, resources).reset_password(body.token, body.password, client_ip(request))
    return Accepted(detail="Password changed; log in with the new password.")


@router.get("/users/me", response_model=Me, responses=error_responses(Unauthorized, Forbidden))
async def me(user: SignedInUser, uow: UoWDep, resources: ResourcesDep) -> Me:
    """The signed-in user and the organisations they belong to."""
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        is_platform_admin=user.is_platform_admin,
        email_verified=user.email_verified_at is not None,
        orgs=await _auth(uow, resources).my_orgs(user.id),
        language=user.language,
    )


@router.patch(
    "/users/me", response_model=Me, responses=error_responses(Unauthorized, Forbidden, InvalidField)
)
async def update_me(body: ProfileUpdate, user: SignedInUser, uow: UoWDep, resources: ResourcesDep) -> Me:
    """Change the signed-in user's display name and the `language` of their dashboard and emails (one Hutch
    has a catalogue for, else 422 and nothing changes; `null`: follow the browser)."""
    await _auth(uow, resources).update_profile(user, body)
    return await me(user, uow, resources)


@router.post(
    "/users/me/password", response_model=TokenPair, responses=error_responses(Unauthorized, Forbidden)
)
async def change_password(
    body: PasswordChange, request: Request, user: SignedInUser, uow: UoWDep, resources: ResourcesDep
) -> TokenPair:
    """Change the password. Every other session ends; use the new token pair from this answer."""
    return await _auth(uow, resources).change_password(
        user.id, body.current_password, body.new_password, client_ip(request)
    )
