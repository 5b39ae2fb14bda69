"""Single sign-on pages: off to the provider and back with a dashboard session, the password that links a
provider to an existing account, linking and unlinking from the account page, and the org's requirement.

The browser carries the attempt (state, nonce, PKCE verifier, where to go next) in a sealed cookie scoped to
``/auth/oidc`` that lives ten minutes and is cleared by the callback, whatever its outcome: a callback whose
state is not this browser's own is refused and starts no session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hutch.accounts.models import SsoProvider, User
from hutch.accounts.oidc_gateway import OidcGateway, ProviderIdentity
from hutch.accounts.sso import (
    ATTEMPT_SECONDS,
    LinkedIdentity,
    NeedsPassword,
    NeedsVerification,
    PendingLink,
    SignedIn,
    SignInAttempt,
    SignInExpired,
    SignInOutcome,
    SsoService,
)
from hutch.core.errors import Forbidden, HutchError, InvalidField
from hutch.core.request_context import client_ip
from hutch.db.engine import UnitOfWork
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _, said
from hutch.resources import Resources
from hutch.web.deps import (
    CSRF_FAILED,
    ViewerDep,
    attempt,
    check_form_csrf,
    form_csrf,
    html_errors,
    page,
    with_csrf_cookie,
)
from hutch.web.public_pages import safe_next
from hutch.web.sessions import COOKIE, WebSessions, same_token, set_session_cookie

router = APIRouter(include_in_schema=False, dependencies=[Depends(html_errors)])
FormCsrf = Annotated[str, Depends(form_csrf)]

NOT_SIGNED_IN, NOT_LINKED = N_("Not signed in"), N_("Not linked")  # the headings of a refusal's page
ATTEMPT_COOKIE = "hutch_sso"
PENDING_COOKIE = "hutch_sso_link"
COOKIE_PATH = "/auth/oidc"


def _sso(uow: UnitOfWork, resources: Resources) -> SsoService:
    return SsoService(uow, resources.settings, resources.rate_limiter, resources.secret_box, resources.sso)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _redirect_uri(resources: Resources, provider: SsoProvider) -> str:
    """What the operator registers with the provider: the public URL, then the callback's path."""
    return f"{resources.settings.base_url}/auth/oidc/{provider.value}/callback"


def _set(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=ATTEMPT_SECONDS,
        httponly=True,
        secure=_secure(request),
        samesite="lax",  # sent on the provider's top-level redirect back, not on cross-site posts
        path=COOKIE_PATH,
    )


def _clear(response: Response, *names: str) -> Response:
    for name in names:
        response.delete_cookie(name, path=COOKIE_PATH)
    return response


def _message(request: Request, heading: str, text: str, *, status_code: int = 200) -> HTMLResponse:
    error = status_code >= 400
    return page(
        request, "message.html", None, status_code=status_code, heading=heading, message=text, error=error
    )


async def _to_provider(
    request: Request, resources: Resources, gateway: OidcGateway, started: SignInAttempt
) -> Response:
    url = await gateway.authorization_url(
        _redirect_uri(resources, gateway.provider), started.state, started.nonce, started.code_verifier
    )
    response = RedirectResponse(url, status_code=303)
    _set(response, request, ATTEMPT_COOKIE, started.seal(resources.secret_box))
    return response


@router.get("/auth/oidc/{provider}/login")
async def sso_login(provider: str, request: Request, resources: ResourcesDep, next: str = "") -> Response:
    """Sign in or sign up with ``google`` or ``oidc``: off to the provider's sign-in page."""
    gateway = resources.sso.get(provider[:40])
    return await _to_provider(
        request, resources, gateway, SignInAttempt.start(gateway.provider, safe_next(next))
    )


@router.get("/auth/oidc/{provider}/callback", response_class=HTMLResponse)
async def sso_callback(
    provider: str,
    request: Request,
    uow: UoWDep,
    resources: ResourcesDep,
    csrf: FormCsrf,
    state: str = "",
    code: str = "",
    error: str = "",
) -> Response:
    """The provider sends the browser back here with a code: verified, it ends with a dashboard session."""
    gateway = resources.sso.get(provider[:40])
    found: ProviderIdentity | HutchError
    try:
        started = SignInAttempt.open(
            resources.secret_box, request.cookies.get(ATTEMPT_COOKIE), gateway.provider.value, state
        )
    except SignInExpired as exc:
        return _clear(_message(request, _(NOT_SIGNED_IN), said(exc.detail), status_code=400), ATTEMPT_COOKIE)
    if error or not code:
        text = _("{provider} did not sign you in ({why}). Start again when ready.").format(
            provider=gateway.label, why=error[:60] or _("no code")
        )
        return _clear(_message(request, _(NOT_SIGNED_IN), text, status_code=400), ATTEMPT_COOKIE)
    found = await attempt(
        uow,
        gateway.identity(
            code[:2000], _redirect_uri(resources, gateway.provider), started.code_verifier, started.nonce
        ),
    )
    if isinstance(found, HutchError):
        response = _message(request, _(NOT_SIGNED_IN), said(found.detail), status_code=found.status_code)
        return _clear(response, ATTEMPT_COOKIE)
    sso = _sso(uow, resources)
    spent = await attempt(uow, sso.spend(started))  # after the provider answered: no connection held then
    if isinstance(spent, HutchError):
        return _clear(
            _message(request, _(NOT_SIGNED_IN), said(spent.detail), status_code=400), ATTEMPT_COOKIE
        )
    if started.link_user_id is not None:
        return _clear(await _link_signed_in(request, uow, sso, started.link_user_id, found), ATTEMPT_COOKIE)
    outcome = await attempt(uow, sso.sign_in(found, started.next, client_ip(request)))
    return _clear(
        await _answer(request, uow, resources, outcome, gateway.label, csrf, started.next), ATTEMPT_COOKIE
    )


async def _link_signed_in(
    request: Request, uow: UnitOfWork, sso: SsoService, user_id: str, found: ProviderIdentity
) -> Response:
    """Back from the provider after "Link" on the account page: the same person must still be signed in."""
    token = request.cookies.get(COOKIE)
    signed_in = await WebSessions(uow.session).find(token) if token else None
    if signed_in is None or signed_in.user.id != user_id:
        return _message(request, _(NOT_LINKED), said(SignInExpired().detail), status_code=400)
    linked = await attempt(uow, sso.link_signed_in(user_id, found, client_ip(request)))
    if isinstance(linked, HutchError):
        return _message(request, _(NOT_LINKED), said(linked.detail), status_code=linked.status_code)
    label = sso.providers.label(found.provider)
    done = urlencode({"done": _("{provider} is linked to your account.").format(provider=label)})
    return RedirectResponse(f"/app/account?{done}", status_code=303)


async def _answer(
    request: Request,
    uow: UnitOfWork,
    resources: Resources,
    outcome: SignInOutcome | HutchError,
    label: str,
    csrf: str,
    next: str,
) -> Response:
    if isinstance(outcome, HutchError):
        return _message(request, _(NOT_SIGNED_IN), said(outcome.detail), status_code=outcome.status_code)
    if isinstance(outcome, NeedsVerification):
        return _message(
            request,
            _("Confirm your email address"),
            _(
                "We sent a link to {email}. Open it to confirm the address, then sign in with {provider} "
                "again."
            ).format(email=outcome.email, provider=label),
        )
    if isinstance(outcome, NeedsPassword):
        pending = outcome.pending
        response = page(
            request, "public/sso_link.html", None, csrf=csrf, email=pending.email, label=label, error=None
        )
        _set(response, request, PENDING_COOKIE, pending.seal(resources.secret_box))
        return with_csrf_cookie(response, csrf, _secure(request))
    assert isinstance(outcome, SignedIn)
    token = await WebSessions(uow.session).start(outcome.user, outcome.org_id)
    signed_in = RedirectResponse("/app/onboarding" if outcome.new_account else safe_next(next), 303)
    set_session_cookie(signed_in, _secure(request), token)
    return _clear(signed_in, PENDING_COOKIE)


@router.post("/auth/oidc/link", response_class=HTMLResponse, dependencies=[Depends(check_form_csrf)])
async def sso_link_with_password(
    request: Request,
    uow: UoWDep,
    resources: ResourcesDep,
    csrf: FormCsrf,
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    """The password of the account whose email the provider gave: it links the provider, then signs in."""
    try:
        pending = PendingLink.open(resources.secret_box, request.cookies.get(PENDING_COOKIE))
    except SignInExpired as exc:
        return _clear(_message(request, _(NOT_LINKED), said(exc.detail), status_code=400), PENDING_COOKIE)
    label = resources.sso.label(SsoProvider(pending.provider))
    outcome = await attempt(
        uow, _sso(uow, resources).link_with_password(pending, password, client_ip(request))
    )
    if isinstance(outcome, HutchError) and outcome.status_code in (401, 429):
        # A wrong password: ask again (the failure counts towards the sign-in lockout).
        context = {"csrf": csrf, "email": pending.email, "label": label, "error": said(outcome.detail)}
        return page(request, "public/sso_link.html", None, status_code=outcome.status_code, **context)
    return _clear(await _answer(request, uow, resources, outcome, label, csrf, pending.next), PENDING_COOKIE)


# --- the account page: link and unlink --------------------------------------------------------------------


@dataclass(frozen=True)
class AccountSection:
    linked: list[LinkedIdentity]
    linkable: list[OidcGateway]
    has_password: bool


async def account_section(uow: UnitOfWork, resources: Resources, user: User) -> AccountSection | None:
    """What ``app/account_sso.html`` shows; None when the deployment has no provider and none is linked."""
    sso = _sso(uow, resources)
    linked = await sso.linked(user.id)
    mine = {i.provider for i in linked}
    linkable = [g for g in resources.sso.configured() if g.provider not in mine]
    if not linked and not linkable:
        return None
    return AccountSection(linked, linkable, sso.has_password(user))


@router.get("/app/account/sso/{provider}/link")
async def account_link(
    provider: str, request: Request, found: ViewerDep, resources: ResourcesDep, csrf: str = ""
) -> Response:
    """Link a provider to the signed-in account: off to the provider, back to the account page.

    A link, not a form: the dashboard's forms may only lead to Hutch itself (its Content-Security-Policy),
    so the session's CSRF token comes in the query instead."""
    if not same_token(csrf, found.csrf):
        raise Forbidden(CSRF_FAILED)
    gateway = resources.sso.get(provider[:40])
    started = SignInAttempt.start(gateway.provider, "/app/account", link_user_id=found.user_id)
    return await _to_provider(request, resources, gateway, started)


@router.post("/app/account/sso/{provider}/unlink")
async def account_unlink(
    provider: str, request: Request, found: ViewerDep, uow: UoWDep, resources: ResourcesDep
) -> Response:
    """Unlink a provider; refused when it would leave no way to sign in."""
    try:
        chosen = SsoProvider(provider)
    except ValueError:
        raise InvalidField("provider", _("Unknown sign-in provider.")) from None
    await _sso(uow, resources).unlink(found.user_id, chosen, client_ip(request))
    label = resources.sso.label(chosen)
    done = urlencode({"done": _("{provider} is unlinked.").format(provider=label)})
    return RedirectResponse(f"/app/account?{done}", status_code=303)


# --- the org: require a provider --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgSection:
    providers: list[OidcGateway]
    required: str | None
    required_label: str


async def team_section(uow: UnitOfWork, resources: Resources, org_id: str) -> OrgSection:
    """What ``app/team_sso.html`` shows: the configured providers and the one the org requires."""
    required = await _sso(uow, resources).required_by(org_id)
    return OrgSection(
        resources.sso.configured(),
        required.value if required else None,
        resources.sso.label(required) if required else "",
    )


@router.post("/app/team/sso")
async def require_sso(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    resources: ResourcesDep,
    provider: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Owners require one provider for every member's sign-in (empty: passwords work again)."""
    try:
        chosen = SsoProvider(provider) if provider else None
    except ValueError:
        raise InvalidField("provider", _("Unknown sign-in provider.")) from None
    await _sso(uow, resources).require(found.principal, chosen, client_ip(request))
    return RedirectResponse("/app/team#sso", status_code=303)
