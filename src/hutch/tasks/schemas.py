"""What the task routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, Field, field_validator

Description = Annotated[str, Field(min_length=10, max_length=2000)]


def _cron(value: str | None) -> str | None:
    if value is not None and not croniter.is_valid(value):
        raise ValueError("schedule must be a cron expression, like '0 9 * * 1-5' (weekdays at 9:00)")
    return value


def _zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris") from None
    return value


class TaskCreate(BaseModel):
    description: Description
    schedule: str | None = Field(default=None, max_length=100)  # cron: a recurring task
    timezone: str = Field(default="UTC", max_length=64)  # how the schedule's times are read

    _check_schedule = field_validator("schedule")(_cron)
    _check_zone = field_validator("timezone")(_zone)


class TaskUpdate(BaseModel):
    description: Description | None = None
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)

    _check_schedule = field_validator("schedule")(_cron)
    _check_zone = field_validator("timezone")(_zone)


class TaskStep(BaseModel):
    number: int  # from 1
    title: str
    done: bool
    output: str | None
    screenshots: list[str] = Field(default_factory=list)  # URLs of the browser's screens in this step


class TaskOut(BaseModel):
    id: str
    agent_id: str
    description: str
    status: str
    plan: list[dict[str, Any]] | None
    result: dict[str, Any] | None
    error: str | None
    schedule: str | None
    timezone: str
    next_run_at: datetime | None
    parent_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[TaskStep] = Field(default_factory=list)  # the plan's steps, with their screenshots


class TaskList(BaseModel):
    items: list[TaskOut]
    total: int
