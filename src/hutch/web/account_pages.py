"""Pages behind the links Hutch emails (verify an address, reset a password, accept an invitation), and
your account page: download your data, delete your account.

The emailed links work without JavaScript and without a session: the single-use token in the link is the
credential. The account page is signed in, through the same services as ``/api/v1/users/me``; it stays open
to members of a suspended organisation, whose data is still theirs to download or delete.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hutch.accounts.email_links import EmailLinks
from hutch.accounts.models import OrgRole, User
from hutch.accounts.orgs import ROLE_NAMES, OrgService
from hutch.accounts.repository import UserRepository
from hutch.accounts.schemas import NewPasswordForm, ProfileUpdate, SignupRequest
from hutch.accounts.service import AuthService
from hutch.core.errors import HutchError, NotFound
from hutch.core.request_context import client_ip
from hutch.deletion.dependencies import DeletionsDep, ExportsDep
from hutch.deletion.schemas import ExportOut
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.i18n import _, language_for, set_language
from hutch.web.deps import Viewer, ViewerDep, attempt, page
from hutch.web.languages import language_choices, validation_message
from hutch.web.sessions import COOKIE, WebSessions, clear_session_cookie
from hutch.web.sso_pages import account_section
from hutch.web.templating import brand_of, render

router = APIRouter(include_in_schema=False)

TokenParam = Annotated[str, Form(max_length=200)]
PasswordParam = Annotated[str, Form(max_length=256)]


def message(
    request: Request, heading: str, text: str, *, error: bool = False, next_steps: str | None = None
) -> HTMLResponse:
    return render(
        request,
        "message.html",
        status_code=400 if error else 200,
        heading=heading,
        message=text,
        error=error,
        next_steps=next_steps,
    )


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(
    request: Request, uow: UoWDep, resources: ResourcesDep, token: str = ""
) -> HTMLResponse:
    links = EmailLinks(uow, resources.settings, resources.secret_box, resources.rate_limiter)
    result = await attempt(uow, links.verify_email(token))
    if isinstance(result, HutchError):
        return message(request, _("Email not confirmed"), result.detail, error=True)
    return message(
        request, _("Email confirmed"), _("Thank you: {email} is confirmed.").format(email=result.email)
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_form(request: Request, token: str = "") -> HTMLResponse:
    return render(request, "reset_password.html", token=token)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password_submit(
    request: Request, uow: UoWDep, resources: ResourcesDep, token: TokenParam, password: PasswordParam
) -> HTMLResponse:
    try:
        new_password = NewPasswordForm(password=password).password
    except ValidationError as exc:
        error = validation_message(exc.errors()[0])
        return render(request, "reset_password.html", status_code=400, token=token, error=error.capitalize())
    links = EmailLinks(uow, resources.settings, resources.secret_box, resources.rate_limiter)
    result = await attempt(uow, links.reset_password(token, new_password, client_ip(request)))
    if isinstance(result, HutchError):
        return message(request, _("Password not changed"), result.detail, error=True)
    return message(
        request,
        _("Password changed"),
        _("Your password is changed and every earlier session is signed out."),
    )


@router.get("/invitations/accept", response_class=HTMLResponse)
async def invitation_page(
    request: Request, uow: UoWDep, resources: ResourcesDep, token: str = ""
) -> HTMLResponse:
    opened = await attempt(
        uow, OrgService(uow, resources.settings, resources.secret_box).open_invitation(token)
    )
    if isinstance(opened, HutchError):
        return message(request, _("Invitation not valid"), opened.detail, error=True)
    invitation, org = opened
    return render(
        request,
        "invitation.html",
        token=token,
        org_name=org.name,
        role=invitation.role.value,
        email=invitation.email,
    )


@router.post("/invitations/accept", response_class=HTMLResponse)
async def invitation_submit(
    request: Request,
    uow: UoWDep,
    resources: ResourcesDep,
    token: TokenParam,
    password: PasswordParam,
    action: Annotated[Literal["signup", "login"], Form()],
    name: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    orgs = OrgService(uow, resources.settings, resources.secret_box)
    opened = await attempt(uow, orgs.open_invitation(token))
    if isinstance(opened, HutchError):
        return message(request, _("Invitation not valid"), opened.detail, error=True)
    invitation, org = opened
    # Plain values: a failed attempt below rolls back and expires the loaded rows.
    page = {"token": token, "org_name": org.name, "role": invitation.role.value, "email": invitation.email}
    auth = AuthService(uow, resources.settings, resources.rate_limiter, resources.secret_box)
    ip = client_ip(request)
    outcome: object | HutchError
    if action == "signup":
        try:
            signup = SignupRequest(
                email=page["email"], password=password, name=name or None, invitation_token=token
            )
        except ValidationError as exc:
            outcome = HutchError(validation_message(exc.errors()[0]).capitalize().rstrip(".") + ".")
        else:
            outcome = await attempt(uow, auth.signup(signup, ip))
    else:
        user = await attempt(uow, auth.authenticate(page["email"], password, ip))
        outcome = (
            user
            if isinstance(user, HutchError)
            else await attempt(uow, orgs.accept_invitation(user, token, ip))
        )
    if isinstance(outcome, HutchError):
        return render(request, "invitation.html", status_code=400, error=outcome.detail, **page)
    return message(
        request,
        _("Welcome to {org}").format(org=page["org_name"]),
        _("You joined {org} as {role}.").format(
            org=page["org_name"], role=_(ROLE_NAMES[OrgRole(page["role"])])
        ),
        next_steps=_("Sign in with {email} to start.").format(email=page["email"]),
    )


# --- your account: your data, downloaded or deleted ---------------------------------------------------

ACCOUNT = "/app/account"


async def _me(uow: UoWDep, found: Viewer) -> User:
    user = await UserRepository(uow.session).get(found.user_id)
    if user is None:  # the session outlived its account
        raise NotFound("User")
    return user


@router.get(ACCOUNT, response_class=HTMLResponse)
async def account_page(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    exports: ExportsDep,
    resources: ResourcesDep,
    done: str = "",
) -> HTMLResponse:
    user = await _me(uow, found)
    sso_section = await account_section(uow, resources, user)  # the sign-in methods (docs/sso.md)
    return page(
        request,
        "app/account.html",
        found,
        section="account",
        user=user,
        exports=[ExportOut.of(e) for e in await exports.recent(user.id)],
        now=datetime.now(UTC),
        flash=done[:200] or None,
        sso_section=sso_section,
        languages=language_choices(resources.settings),
    )


@router.post(f"{ACCOUNT}/language", response_class=HTMLResponse)
async def choose_language(
    found: ViewerDep, uow: UoWDep, resources: ResourcesDep, language: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    """The same as ``PATCH /api/v1/users/me {language}``; empty: follow the browser again."""
    auth = AuthService(uow, resources.settings, resources.rate_limiter, resources.secret_box)
    user = await _me(uow, found)
    try:
        await auth.update_profile(user, ProfileUpdate(language=language or None))
    except (HutchError, ValidationError):
        return RedirectResponse("/app/account", status_code=303)  # a language not offered: nothing changes
    set_language(resources.settings, language_for(resources.settings, user.language))
    done = _("Saved: the dashboard and your emails are in the language you chose.")
    return RedirectResponse("/app/account?" + urlencode({"done": done}), status_code=303)


@router.post(f"{ACCOUNT}/export")
async def request_export(found: ViewerDep, uow: UoWDep, exports: ExportsDep) -> Response:
    """The same request as ``POST /api/v1/users/me/export``; the page shows when it is ready."""
    await exports.request(await _me(uow, found))
    return RedirectResponse(
        "/app/account?"
        + urlencode({"done": _("Your export is being prepared; it is ready in a minute or two.")}),
        status_code=303,
    )


@router.get(ACCOUNT + "/exports/{export_id}/download")
async def download_export(export_id: str, found: ViewerDep, exports: ExportsDep) -> FileResponse:
    path = await exports.file_of(found.user_id, export_id)
    return FileResponse(path, media_type="application/zip", filename=f"hutch-export-{export_id}.zip")


@router.get(f"{ACCOUNT}/delete", response_class=HTMLResponse)
async def delete_account_form(
    request: Request, found: ViewerDep, uow: UoWDep, deletions: DeletionsDep
) -> HTMLResponse:
    return page(
        request,
        "app/account_delete.html",
        found,
        section="account",
        preview=await deletions.preview_user(found.user_id),
        errors={},
        value="",
    )


@router.post(f"{ACCOUNT}/delete", response_class=HTMLResponse)
async def delete_account(
    request: Request,
    found: ViewerDep,
    uow: UoWDep,
    deletions: DeletionsDep,
    confirm: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """The same as ``DELETE /api/v1/users/me``: the account goes in a job, and this session ends now."""
    user = await _me(uow, found)
    asked = (
        await attempt(uow, deletions.delete_me(user, client_ip(request)))
        if confirm.strip().lower() == found.email.lower()
        else HutchError(_("Type your email exactly as shown."))
    )
    if isinstance(asked, HutchError):
        return page(
            request,
            "app/account_delete.html",
            found,
            status_code=422 if asked.status_code == 400 else asked.status_code,
            section="account",
            preview=await deletions.preview_user(found.user_id),
            errors={"confirm": asked.detail},
            value=confirm,
        )
    token = request.cookies.get(COOKIE)
    if token:
        await WebSessions(uow.session).end(token)
    response = message(
        request,
        _("Your account is being deleted"),
        _("Your account, and the organisations you were the last owner of, are being deleted for good."),
        next_steps=_("You are signed out. Thank you for having used {product}.").format(
            product=brand_of(request).name
        ),
    )
    clear_session_cookie(response)
    return response
