"""What every dashboard page needs: who is signed in (or a redirect to the login), the org shown, the CSRF
check for changes, and errors rendered as pages instead of JSON."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from hutch.accounts.models import OrgRole
from hutch.accounts.repository import MembershipRepository
from hutch.accounts.suspension import refuse_suspended_org, refuse_suspended_user
from hutch.core.errors import Forbidden, HutchError
from hutch.core.principal import USER_SCOPES, Principal, PrincipalKind, Scope
from hutch.db.engine import UnitOfWork
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import N_, _, language_for, said, set_language
from hutch.web.languages import validation_message
from hutch.web.sessions import COOKIE, CSRF_COOKIE, WebSessions, same_token
from hutch.web.templating import render

CSRF_HEADER = "X-CSRF-Token"
# What a member of a suspended organisation may still open: their own account (export, deletion).
SUSPENDED_ORG_PATHS = ("/app/account",)
CSRF_FAILED = N_("This form has expired or did not come from this site. Reload the page and try again.")


T = TypeVar("T")


async def attempt(uow: UnitOfWork, action: Awaitable[T]) -> T | HutchError:
    """Run a service call; on a domain error undo what it wrote (unless it must persist) and return it, for
    the page to show next to its field."""
    try:
        return await action
    except HutchError as exc:
        if not exc.keeps_changes:
            await uow.rollback()
        return exc


def error_text(exc: HutchError) -> str:
    """What to show next to the field: a rule's own words, not the field's name in front of them."""
    body = exc.body()
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return said(body[0].get("msg", exc.detail))  # a rule worded for pages too: in the reader's language
    return str(exc.detail)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A form's invalid fields and what is wrong with each (the first problem per field)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        errors.setdefault(field, validation_message(error))
    return errors


def error_page(request: Request, status: int, detail: str) -> Response:
    viewer = getattr(request.state, "viewer", None)
    headings = {
        401: _("Please sign in"),
        402: _("Plan limit reached"),
        403: _("Not allowed"),
        404: _("Not found"),
    }
    return render(
        request,
        "error.html",
        status_code=status,
        viewer=viewer,
        heading=headings.get(status, _("Something went wrong") if status >= 500 else _("That did not work")),
        detail=said(detail),  # a refusal worded for pages too, in the reader's language
    )


async def html_errors(request: Request) -> None:
    """Errors of the dashboard's routes answer as pages."""
    request.state.error_page = error_page


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as plain values: they stay readable after a failed change is rolled back."""

    user_id: str
    email: str
    is_admin: bool
    csrf: str
    org_id: str
    org_name: str
    org_plan: str
    principal: Principal
    orgs: list[tuple[str, str, str]]  # every org of the user: (id, name, role)
    language: str | None = None  # chosen in the profile; None: the browser's

    @property
    def can_manage(self) -> bool:
        """Owners and admins of the org: billing, keys, team."""
        role = self.principal.org_role
        return role is not None and OrgRole(role).rank >= OrgRole.ADMIN.rank


async def _sent_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf")
        return value if isinstance(value, str) else None
    return None


async def viewer(request: Request, uow: UoWDep, resources: ResourcesDep) -> Viewer:
    await html_errors(request)
    token = request.cookies.get(COOKIE)
    signed_in = await WebSessions(uow.session).find(token) if token else None
    if signed_in is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": f"/login?next={quote(target)}"})
    user, web_session = signed_in.user, signed_in.web_session
    if user.language is not None:  # their choice in the profile, over the browser's
        set_language(resources.settings, language_for(resources.settings, user.language))
    refuse_suspended_user(user)
    if request.method not in ("GET", "HEAD") and not same_token(
        await _sent_csrf(request), web_session.csrf_token
    ):
        raise Forbidden(_(CSRF_FAILED))
    memberships = await MembershipRepository(uow.session).orgs_of(user.id)
    if not memberships:
        raise Forbidden(_("You are not in any organisation; ask for an invitation or sign up again."))
    current = next(((o, m) for o, m in memberships if o.id == web_session.org_id), memberships[0])
    org, membership = current
    if not user.is_platform_admin and not request.url.path.startswith(SUSPENDED_ORG_PATHS):
        refuse_suspended_org(org)  # members see why; their own data stays theirs to download or delete
    scopes = USER_SCOPES | ({Scope.ADMIN} if user.is_platform_admin else set())
    principal = Principal(
        kind=PrincipalKind.USER,
        org_id=org.id,
        scopes=frozenset(scopes),
        user_id=user.id,
        org_role=membership.role.value,
        is_platform_admin=user.is_platform_admin,
    )
    request.state.principal = principal
    found = Viewer(
        user_id=user.id,
        email=user.email,
        is_admin=user.is_platform_admin,
        csrf=web_session.csrf_token,
        org_id=org.id,
        org_name=org.name,
        org_plan=org.plan,
        principal=principal,
        orgs=[(o.id, o.name, m.role.value) for o, m in memberships],
        language=user.language,
    )
    request.state.viewer = found
    return found


ViewerDep = Annotated[Viewer, Depends(viewer)]


async def admin_viewer(found: ViewerDep) -> Viewer:
    if not found.is_admin:
        raise Forbidden(_("Only platform admins see the admin console."))
    return found


AdminViewerDep = Annotated[Viewer, Depends(admin_viewer)]


async def form_csrf(request: Request) -> str:
    """The double-submit token of a form shown before signing in: set as a cookie, echoed by the form."""
    await html_errors(request)
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


async def check_form_csrf(request: Request) -> None:
    await html_errors(request)
    sent = (await request.form()).get("csrf")
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not isinstance(sent, str) or not same_token(sent, expected):
        raise Forbidden(_(CSRF_FAILED))


def with_csrf_cookie(response: HTMLResponse, token: str, secure: bool) -> HTMLResponse:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
    return response


def page(
    request: Request, template: str, found: Viewer | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(request, template, status_code=status_code, viewer=found, **context)
