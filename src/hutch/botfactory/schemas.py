"""What the creator-account pool takes, from the API and the admin console alike."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from hutch.botfactory.gateway import is_session
from hutch.botfactory.models import AccountStatus

PHONE = r"^\+[1-9]\d{6,14}$"


class CreatorAccountCreate(BaseModel):
    phone: str = Field(pattern=PHONE, description="E.164, e.g. +14155550100.")
    api_id: int = Field(ge=1, le=2**31 - 1, description="From my.telegram.org, with the api_hash.")
    api_hash: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-fA-F]+$")
    session: str = Field(
        min_length=20, max_length=2000, description="A Telethon StringSession of the logged-in account."
    )

    @field_validator("session")
    @classmethod
    def _a_session(cls, value: str) -> str:
        if not is_session(value):
            raise ValueError(
                "not a Telethon StringSession (log the account in with hutch botfactory add-account)"
            )
        return value

    priority: int = Field(default=0, ge=-100, le=100)
    daily_cap: int = Field(default=5, ge=1, le=50)


class CreatorAccountUpdate(BaseModel):
    priority: int | None = Field(default=None, ge=-100, le=100)
    daily_cap: int | None = Field(default=None, ge=1, le=50)
    status: AccountStatus | None = Field(
        default=None, description="Set active to use a locked account again, or locked to set one aside."
    )
    session: str | None = Field(default=None, min_length=20, max_length=2000)

    @field_validator("session")
    @classmethod
    def _a_session(cls, value: str | None) -> str | None:
        if value is not None and not is_session(value):
            raise ValueError("not a Telethon StringSession")
        return value
