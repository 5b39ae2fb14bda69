"""API shapes of the accounts domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field

from hutch.accounts.models import OrgRole, SsoProvider
from hutch.accounts.passwords import strong_password

# 8+ characters and not a common password; the 422 says which rule failed.
NewPassword = Annotated[str, Field(min_length=8, max_length=256), AfterValidator(strong_password)]
OrgName = Annotated[str, Field(min_length=1, max_length=200)]
# A language code (``es``, ``pt-BR``); the service checks Hutch has a catalogue for it (docs/languages.md).
LanguageCode = Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")]


class SignupRequest(BaseModel):
    email: EmailStr
    password: NewPassword
    name: str | None = Field(default=None, max_length=200)
    org_name: OrgName | None = None
    # Join the organisation that sent this invitation instead of creating one.
    invitation_token: str | None = Field(default=None, min_length=1, max_length=200)


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    is_platform_admin: bool


class OrgOut(BaseModel):
    id: str
    name: str
    plan: str


class SignupResponse(TokenPair):
    user: UserOut
    org: OrgOut


class MyOrg(OrgOut):
    role: str


class Me(UserOut):
    email_verified: bool
    orgs: list[MyOrg]
    language: str | None = None  # the dashboard's and emails' language; None: the browser's


class ProfileUpdate(BaseModel):
    """Only the fields sent change; ``language: null`` goes back to following the browser."""

    name: str | None = Field(default=None, max_length=200)
    language: LanguageCode | None = None


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: NewPassword


class EmailVerification(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class EmailVerified(BaseModel):
    email_verified: bool


class NewPasswordForm(BaseModel):
    password: NewPassword


class PasswordResetRequest(BaseModel):
    email: str = Field(max_length=320)


class PasswordReset(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    password: NewPassword


class Accepted(BaseModel):
    detail: str


class OrgCreate(BaseModel):
    name: OrgName


class OrgUpdate(BaseModel):
    """Only the fields sent change; ``language: null`` goes back to the deployment's default."""

    name: OrgName | None = None
    language: LanguageCode | None = None  # of the org's bots' notices
    use_end_user_language: bool | None = None  # notices in the end user's own language when known
    # Owners only: members sign in through this provider (docs/sso.md); ``null`` lets passwords in again.
    required_sso_provider: SsoProvider | None = None


class OrgDetail(MyOrg):
    created_at: datetime
    member_count: int
    language: str | None = None
    use_end_user_language: bool = False
    required_sso_provider: SsoProvider | None = None


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str
    role: OrgRole
    joined_at: datetime


class MemberList(BaseModel):
    items: list[MemberOut]


class RoleChange(BaseModel):
    role: OrgRole


class InvitationCreate(BaseModel):
    email: EmailStr
    role: OrgRole = OrgRole.MEMBER


class InvitationOut(BaseModel):
    id: str
    email: str
    role: OrgRole
    created_at: datetime
    expires_at: datetime


class InvitationList(BaseModel):
    items: list[InvitationOut]


class InvitationAccept(BaseModel):
    token: str = Field(min_length=1, max_length=200)


def _reason(value: str) -> str:
    if not value.strip():
        raise ValueError("Give a reason: the members of a suspended organisation are shown it.")
    return value.strip()


class SuspendRequest(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_reason)]


class SuspensionOut(BaseModel):
    id: str
    suspended_at: datetime | None
    reason: str | None
