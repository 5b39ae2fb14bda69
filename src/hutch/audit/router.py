"""The audit log, for platform admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hutch.audit.repository import AuditRepository
from hutch.audit.schemas import AuditEntryOut, AuditPage
from hutch.core.errors import Forbidden, Unauthorized, error_responses
from hutch.http.authz import PlatformAdmin
from hutch.http.dependencies import UoWDep

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/admin/audit-log", response_model=AuditPage, responses=error_responses(Unauthorized, Forbidden))
async def audit_log(
    _: PlatformAdmin,
    uow: UoWDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    org_id: str | None = None,
    action: str | None = None,
) -> AuditPage:
    """Signups, logins, failed logins, key creation and revocation, newest first."""
    entries, total = await AuditRepository(uow.session).page(
        skip=skip, limit=limit, org_id=org_id, action=action
    )
    return AuditPage(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in entries], total=total
    )
