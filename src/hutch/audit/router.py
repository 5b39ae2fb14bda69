"""The audit log, for platform admins."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from hutch.audit.repository import AuditFilter, AuditRepository, day_range
from hutch.audit.schemas import AuditEntryOut, AuditPage
from hutch.core.bounds import Skip
from hutch.core.errors import BadRequest, Forbidden, Unauthorized, error_responses
from hutch.http.authz import PlatformAdmin
from hutch.http.dependencies import UoWDep

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get(
    "/admin/audit-log",
    response_model=AuditPage,
    responses=error_responses(BadRequest, Unauthorized, Forbidden),
)
async def audit_log(
    _: PlatformAdmin,
    uow: UoWDep,
    skip: Skip = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    org_id: Annotated[str | None, Query(max_length=32)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=320, description="The acting user's id or email.")] = None,
    start: Annotated[date | None, Query(alias="from", description="First day (UTC), included.")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (UTC), included.")] = None,
) -> AuditPage:
    """Signups, logins, failed logins, key creation and revocation, suspensions, deletions, grants and the
    other changes platform admins make, newest first; filtered by org, action, actor and days."""
    since, until = day_range(start, end)
    where = AuditFilter(org_id=org_id, action=action, actor=actor, since=since, until=until)
    entries, total = await AuditRepository(uow.session).page(where, skip=skip, limit=limit)
    return AuditPage(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in entries], total=total
    )
