"""API shapes of the accounts domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from hutch.accounts.passwords import check_password_strength


class SignupRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    name: str | None = Field(default=None, max_length=200)
    org_name: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("password")
    @classmethod
    def _strong_enough(cls, value: str) -> str:
        check_password_strength(value)
        return value


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
