"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_user_id: str | None
    actor_api_key_id: str | None
    org_id: str | None
    action: str
    target: str | None
    ip: str | None
    details: dict[str, Any] = {}


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
