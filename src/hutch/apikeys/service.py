"""Creating, listing and revoking API keys."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.budget import month_of
from hutch.apikeys.models import ApiKey
from hutch.apikeys.repository import ApiKeyListing
from hutch.apikeys.schemas import ApiKeyCreate, ApiKeyUpdate
from hutch.audit.service import record_audit
from hutch.core.errors import Conflict, Forbidden, InvalidField, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal, Scope
from hutch.core.security import api_key_visible_prefix, new_api_key, sha256_hex


async def create_api_key(
    session: AsyncSession, principal: Principal, request: ApiKeyCreate, ip: str | None
) -> tuple[ApiKey, str]:
    """Store a new key (hashed) and return it with the plaintext, which is never available again."""
    if Scope.ADMIN in request.scopes and not principal.is_platform_admin:
        raise Forbidden("Only platform admins can create keys with the 'admin' scope.")
    if request.agent_ids:
        await _only_own_agents(session, principal, request.agent_ids)
    plaintext = new_api_key()
    key = ApiKey(
        id=new_id("key"),
        org_id=principal.org_id,
        created_by_user_id=principal.user_id,
        label=request.label.strip(),
        prefix=api_key_visible_prefix(plaintext),
        key_hash=sha256_hex(plaintext),
        scopes=[s.value for s in request.scopes],
        agent_ids=request.agent_ids,
        rate_limit_per_minute=request.rate_limit_per_minute,
        monthly_budget_cents=request.monthly_budget_cents,
        expires_at=request.expires_at,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    await record_audit(
        session,
        action="api_key_created",
        org_id=principal.org_id,
        actor_user_id=principal.user_id,
        target=key.id,
        ip=ip,
    )
    return key, plaintext


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    return await ApiKeyListing(session).of_org(principal.org_id)


async def _only_own_agents(session: AsyncSession, principal: Principal, agent_ids: list[str]) -> None:
    found = await ApiKeyListing(session).agents_in_org(principal.org_id, agent_ids)
    unknown = [a for a in agent_ids if a not in found]
    if unknown:
        raise InvalidField("agent_ids", f"no agent {unknown[0]!r} in this organisation")


async def update_api_key(
    session: AsyncSession, principal: Principal, key_id: str, change: ApiKeyUpdate, ip: str | None
) -> ApiKey:
    """Change a key's label and limits (the fields sent; null removes a limit). A revoked key stays as it
    was: 409."""
    key = await ApiKeyListing(session).get_in_org(principal.org_id, key_id)
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is not None:
        raise Conflict("This key is revoked; create a new one instead.")
    fields = change.model_dump(exclude_unset=True)
    if fields.get("label", "") is None:
        raise InvalidField("label", "a key keeps a label")
    if fields.get("agent_ids"):
        await _only_own_agents(session, principal, fields["agent_ids"])
    if "label" in fields:
        fields["label"] = fields["label"].strip()
    for name, value in fields.items():
        setattr(key, name, value)
    await session.flush()
    await session.refresh(key)
    await record_audit(
        session,
        action="api_key_changed",
        org_id=principal.org_id,
        actor_user_id=principal.user_id,
        target=key.id,
        ip=ip,
        details={"fields": sorted(fields)},
    )
    return key


async def spent_this_month(session: AsyncSession, principal: Principal) -> dict[str, int]:
    """What each of the org's keys spent this month, in cents."""
    return await ApiKeyListing(session).spent_this_month(principal.org_id, month_of(datetime.now(UTC)))


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: str, ip: str | None) -> None:
    key = await ApiKeyListing(session).get_in_org(principal.org_id, key_id)
    if key is None:
        raise NotFound("API key")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await record_audit(
            session,
            action="api_key_revoked",
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            target=key.id,
            ip=ip,
        )


async def current_api_key(session: AsyncSession, principal: Principal) -> ApiKey:
    if principal.api_key_id is None:
        raise Forbidden("Signed-in users have no current API key; call this with a key.")
    key = await ApiKeyListing(session).get_in_org(principal.org_id, principal.api_key_id)
    if key is None:
        raise NotFound("API key")
    return key
