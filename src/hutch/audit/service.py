"""Write audit entries; every domain records its security-relevant actions through here."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.audit.models import AuditEntry

COLUMN_LENGTHS = {"target": 200, "ip": 64}  # audit_log's columns


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
    # A target or an address may be what a caller typed (the email of a failed login): one longer than its
    # column keeps its head there and the whole in the details.
    kept: dict[str, str | None] = {"target": target, "ip": ip}
    for name, value in kept.items():
        if value is not None and len(value) > COLUMN_LENGTHS[name]:
            details = {**(details or {}), name: value}
            kept[name] = value[: COLUMN_LENGTHS[name] - 1] + "…"
    target, ip = kept["target"], kept["ip"]
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
