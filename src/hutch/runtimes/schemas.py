"""What the runtime routes answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RuntimeOut(BaseModel):
    status: str  # none | provisioning | ready | error | stopped
    driver: str | None = None
    endpoint: str | None = None
    last_error: str | None = None
    attempts: int = 0
    # While it is ready, what it uses now (the process and Docker drivers tell; EC2 does not yet):
    cpu_percent: float | None = None  # percent of one core: two busy cores read 200
    memory_mb: float | None = None
    uptime_seconds: float | None = None


class RuntimeLogs(BaseModel):
    text: str  # the newest lines, oldest first


class RuntimeHostCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    driver: str = Field(pattern="^(docker|ec2)$", description='"docker" or "ec2".')
    address: str = Field(
        min_length=1,
        max_length=255,
        description="Docker: unix:///var/run/docker.sock, tcp://host:2375 or ssh://user@host; EC2: region.",
    )
    max_runtimes: int = Field(ge=1, le=10_000, description="How many dedicated runtimes it may run.")
    hourly_cost_cents: int = Field(default=0, ge=0, le=1_000_000, description="Its cost, for the margins.")
