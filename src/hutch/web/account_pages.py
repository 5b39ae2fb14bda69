"""Pages behind the links Hutch emails: verify an address, reset a password, accept an invitation.

They work without JavaScript and without a session: the single-use token in the link is the credential.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from hutch.accounts.email_links import EmailLinks
from hutch.accounts.orgs import OrgService
from hutch.accounts.schemas import NewPasswordForm, SignupRequest
from hutch.accounts.service import AuthService
from hutch.core.errors import HutchError
from hutch.core.request_context import client_ip
from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.web.deps import attempt
from hutch.web.templating import render

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
        return message(request, "Email not confirmed", result.detail, error=True)
    return message(request, "Email confirmed", f"Thank you: {result.email} is confirmed.")


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
        error = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        return render(request, "reset_password.html", status_code=400, token=token, error=error.capitalize())
    links = EmailLinks(uow, resources.settings, resources.secret_box, resources.rate_limiter)
    result = await attempt(uow, links.reset_password(token, new_password, client_ip(request)))
    if isinstance(result, HutchError):
        return message(request, "Password not changed", result.detail, error=True)
    return message(
        request, "Password changed", "Your password is changed and every earlier session is signed out."
    )


@router.get("/invitations/accept", response_class=HTMLResponse)
async def invitation_page(
    request: Request, uow: UoWDep, resources: ResourcesDep, token: str = ""
) -> HTMLResponse:
    opened = await attempt(
        uow, OrgService(uow, resources.settings, resources.secret_box).open_invitation(token)
    )
    if isinstance(opened, HutchError):
        return message(request, "Invitation not valid", opened.detail, error=True)
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
        return message(request, "Invitation not valid", opened.detail, error=True)
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
            outcome = HutchError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ").capitalize() + ".")
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
        f"Welcome to {page['org_name']}",
        f"You joined {page['org_name']} as {page['role']}.",
        next_steps=f"Sign in with {page['email']} to start.",
    )
