"""Write audit entries; every domain records its security-relevant actions through here."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.audit.models import AuditEntry


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    org_id: str | None = None,
    actor_user_id: str | None = None,
    actor_api_key_id: str | None = None,
    target: str | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            action=action,
            org_id=org_id,
            actor_user_id=actor_user_id,
            actor_api_key_id=actor_api_key_id,
            target=target,
            ip=ip,
            details=details or {},
        )
    )
