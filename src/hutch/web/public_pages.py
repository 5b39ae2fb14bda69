"""The pages anyone sees: the product, pricing, signing up and in, and a forgotten password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hutch.accounts.email_links import EmailLinks
from hutch.accounts.repository import MembershipRepository
from hutch.accounts.schemas import SignupRequest
from hutch.accounts.service import AuthService
from hutch.core.errors import HutchError, NotFound
from hutch.core.request_context import client_ip
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import said
from hutch.web.deps import (
    attempt,
    check_form_csrf,
    field_errors,
    form_csrf,
    html_errors,
    page,
    with_csrf_cookie,
)
from hutch.web.policies import brand_page, landing_text, policy
from hutch.web.sessions import COOKIE, WebSessions, clear_session_cookie, set_session_cookie
from hutch.web.templating import brand_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(html_errors)])
FormCsrf = Annotated[str, Depends(form_csrf)]
Text = Annotated[str, Form(max_length=320)]
Secret = Annotated[str, Form(max_length=256)]


def safe_next(target: str | None) -> str:
    """Only paths of this site: a login link must not send people elsewhere. Browsers drop tabs and line
    breaks from a URL and read a backslash as a slash, so "/<tab>/evil.example" would be "//evil.example":
    any control character, space or backslash sends to the dashboard instead."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return target
    return "/app"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, resources: ResourcesDep) -> HTMLResponse:
    signed_in = COOKIE in request.cookies
    text = landing_text(brand_of(request))  # the operator's own, from the brand file
    plans = resources.plans.plans
    return page(request, "public/landing.html", None, plans=plans, signed_in=signed_in, landing_text=text)


@router.get("/pricing", response_class=HTMLResponse)
async def pricing(request: Request, resources: ResourcesDep) -> HTMLResponse:
    catalog = resources.plans
    return page(request, "public/pricing.html", None, plans=catalog.plans, packages=catalog.packages)


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, resources: ResourcesDep) -> HTMLResponse:
    """The operator's privacy policy (the brand file's ``[pages.privacy]`` or ``HUTCH_PRIVACY_FILE``)."""
    shown = policy("privacy", resources.settings.privacy_file, brand_of(request))
    return page(request, "public/policy.html", None, policy=shown)


@router.get("/terms", response_class=HTMLResponse)
async def terms(request: Request, resources: ResourcesDep) -> HTMLResponse:
    """The operator's terms of service (the brand file's ``[pages.terms]`` or ``HUTCH_TERMS_FILE``)."""
    shown = policy("terms", resources.settings.terms_file, brand_of(request))
    return page(request, "public/policy.html", None, policy=shown)


@router.get("/pages/{slug}", response_class=HTMLResponse)
async def brand_page_view(request: Request, slug: str) -> HTMLResponse:
    """A page the operator added in the brand file (``[pages.<slug>]``)."""
    listed = brand_of(request).page(slug)
    shown = brand_page(listed) if listed is not None and listed.path == f"/pages/{slug}" else None
    if shown is None:
        raise NotFound("There is no such page.")
    return page(request, "public/policy.html", None, policy=shown)


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, csrf: FormCsrf, resources: ResourcesDep, next: str = ""
) -> HTMLResponse:
    response = page(request, "public/login.html", None, csrf=csrf, next=safe_next(next), email="")
    return with_csrf_cookie(response, csrf, _secure(request))


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(check_form_csrf)])
async def login(
    request: Request,
    uow: UoWDep,
    resources: ResourcesDep,
    csrf: FormCsrf,
    email: Text,
    password: Secret,
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    auth = AuthService(uow, resources.settings, resources.rate_limiter, resources.secret_box)
    user = await attempt(uow, auth.authenticate(email, password, client_ip(request)))
    if isinstance(user, HutchError):  # a failed attempt is kept: it counts towards the lockout
        context = {"csrf": csrf, "next": safe_next(next), "email": email, "error": said(user.detail)}
        return page(request, "public/login.html", None, status_code=user.status_code, **context)
    token = await WebSessions(uow.session).start(
        user, await MembershipRepository(uow.session).first_org_id(user.id)
    )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, _secure(request), token)
    return response


@router.get("/signup", response_class=HTMLResponse)
async def signup_form(
    request: Request, csrf: FormCsrf, resources: ResourcesDep, plan: str = ""
) -> HTMLResponse:
    response = page(request, "public/signup.html", None, csrf=csrf, values={"plan": plan}, errors={})
    return with_csrf_cookie(response, csrf, _secure(request))


@router.post("/signup", response_class=HTMLResponse, dependencies=[Depends(check_form_csrf)])
async def signup(
    request: Request,
    uow: UoWDep,
    resources: ResourcesDep,
    csrf: FormCsrf,
    email: Text,
    password: Secret,
    name: Annotated[str, Form(max_length=200)] = "",
    org_name: Annotated[str, Form(max_length=200)] = "",
    plan: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    values = {"email": email, "name": name, "org_name": org_name, "plan": plan}
    try:
        body = SignupRequest(email=email, password=password, name=name or None, org_name=org_name or None)
    except ValidationError as exc:
        errors = field_errors(exc)
        return page(
            request, "public/signup.html", None, status_code=422, csrf=csrf, values=values, errors=errors
        )
    auth = AuthService(uow, resources.settings, resources.rate_limiter, resources.secret_box)
    result = await attempt(uow, auth.signup(body, client_ip(request)))
    if isinstance(result, HutchError):
        errors = {"email": result.detail}
        return page(
            request,
            "public/signup.html",
            None,
            status_code=result.status_code,
            csrf=csrf,
            values=values,
            errors=errors,
        )
    token = await WebSessions(uow.session).start(result.user, result.org.id)
    target = f"/app/onboarding?plan={plan}" if plan else "/app/onboarding"
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, _secure(request), token)
    return response


@router.post("/logout")
async def logout(request: Request, uow: UoWDep) -> Response:
    # No CSRF check needed to end a session: the worst a forged request can do is sign someone out.
    token = request.cookies.get(COOKIE)
    if token:
        await WebSessions(uow.session).end(token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_form(request: Request, csrf: FormCsrf, resources: ResourcesDep) -> HTMLResponse:
    response = page(request, "public/forgot.html", None, csrf=csrf, sent=False)
    return with_csrf_cookie(response, csrf, _secure(request))


@router.post("/forgot-password", response_class=HTMLResponse, dependencies=[Depends(check_form_csrf)])
async def forgot(
    request: Request, uow: UoWDep, resources: ResourcesDep, csrf: FormCsrf, email: Text
) -> HTMLResponse:
    links = EmailLinks(uow, resources.settings, resources.secret_box, resources.rate_limiter)
    refused = await attempt(uow, links.request_password_reset(email, client_ip(request)))
    if isinstance(refused, HutchError):
        return page(
            request,
            "public/forgot.html",
            None,
            status_code=refused.status_code,
            csrf=csrf,
            sent=False,
            error=refused.detail,
        )
    # The same answer whether or not the address has an account: nothing to learn by probing.
    return page(request, "public/forgot.html", None, csrf=csrf, sent=True)
