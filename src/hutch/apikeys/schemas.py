"""API shapes of API keys. The key itself appears only in the creation answer."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

from hutch.core.bounds import Cents
from hutch.core.principal import Scope

DEFAULT_SCOPES = [Scope.READ, Scope.WRITE, Scope.CHAT]


class ApiKeyCreate(BaseModel):
    label: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES), min_length=1)
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    agent_ids: list[str] | None = Field(default=None, max_length=1000)
    monthly_budget_cents: Cents | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        return _future(value)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return list(dict.fromkeys(value))


def _future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value <= datetime.now(UTC):
        raise ValueError("expires_at must be in the future")
    return value


class ApiKeyUpdate(BaseModel):
    """What a key's owner may change; a field sent as null removes that limit, a field left out stays."""

    label: str | None = Field(default=None, min_length=1, max_length=100)
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    agent_ids: list[str] | None = Field(default=None, max_length=1000)
    monthly_budget_cents: Cents | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        return _future(value)

    @field_validator("label")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a label cannot be blank")
        return value

    @field_validator("agent_ids")
    @classmethod
    def _unique_agents(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class ApiKeyOut(BaseModel):
    id: str
    label: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_minute: int | None
    agent_ids: list[str] | None
    monthly_budget_cents: int | None


class ApiKeyCreated(ApiKeyOut):
    key: str


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
