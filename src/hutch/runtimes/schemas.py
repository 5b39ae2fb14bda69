"""What the runtime routes answer."""

from __future__ import annotations

from pydantic import BaseModel


class RuntimeOut(BaseModel):
    status: str  # none | provisioning | ready | error | stopped
    driver: str | None = None
    endpoint: str | None = None
    last_error: str | None = None
    attempts: int = 0


class RuntimeLogs(BaseModel):
    text: str  # the newest lines, oldest first
