"""Every query on API keys and their spend."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime

from sqlalchemy import and_, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.agents.models import Agent
from hutch.apikeys.models import ApiKey, ApiKeySpend


@dataclass(frozen=True)
class KeyWithSpend:
    """What authenticating a request needs of a key, and what it spent this month."""

    id: str
    org_id: str
    scopes: list[str]
    agent_ids: list[str] | None
    rate_limit_per_minute: int | None
    monthly_budget_cents: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    spent_this_month_cents: int
    org_suspended_at: datetime | None = None  # a suspended org's keys answer 403
    org_suspension_reason: str | None = None


ORG_COLUMNS = {"org_suspended_at", "org_suspension_reason"}
# Built once: authentication runs it on every request, and building a statement costs more than running it.
# Plain columns rather than the row as an entity, which costs more to load than the query to run.
_KEY_WITH_SPEND = (
    select(
        *(
            getattr(ApiKey, f.name)
            for f in fields(KeyWithSpend)
            if f.name != "spent_this_month_cents" and f.name not in ORG_COLUMNS
        ),
        func.coalesce(ApiKeySpend.spent_cents, 0).label("spent_this_month_cents"),
        Org.suspended_at.label("org_suspended_at"),
        Org.suspension_reason.label("org_suspension_reason"),
    )
    .join(Org, Org.id == ApiKey.org_id)
    .outerjoin(
        ApiKeySpend, and_(ApiKeySpend.api_key_id == ApiKey.id, ApiKeySpend.month == bindparam("month"))
    )
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def adjust_spend_sql(after: str | None = None) -> str:
    """Adds ``:delta`` cents (never below zero in total) to key ``:key_id``'s spend in ``:month``.

    ``after`` names a CTE of the same statement whose row comes first: reading it makes PostgreSQL write that
    row (and take its lock) before this one, so statements that carry both lock them in one order."""
    source = f" FROM {after}" if after else ""
    return (
        "INSERT INTO api_key_spend (api_key_id, month, spent_cents) "
        f"SELECT :key_id, :month, GREATEST(CAST(:delta AS bigint), 0){source} "
        "ON CONFLICT (api_key_id, month) DO UPDATE "
        "SET spent_cents = GREATEST(api_key_spend.spent_cents + CAST(:delta AS bigint), 0)"
    )


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash_with_spend(self, key_hash: str, month: date) -> KeyWithSpend | None:
        """The key and this month's spend in one query (authentication runs it on every request)."""
        row = (await self.session.execute(_KEY_WITH_SPEND, {"key_hash": key_hash, "month": month})).first()
        return None if row is None else KeyWithSpend(**row._mapping)

    async def touch_last_used(self, key_id: str, now: datetime) -> None:
        """Record use at most once a minute, so busy keys do not write on every request."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                (ApiKey.last_used_at.is_(None))
                | (ApiKey.last_used_at < text("now() - interval '60 seconds'")),
            )
            .values(last_used_at=now)
        )


class ApiKeyListing:
    """Org-scoped reads and writes: the only way to reach an org's keys."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_org(self, org_id: str) -> list[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at.desc(), ApiKey.id)
        return list((await self.session.scalars(stmt)).all())

    async def get_in_org(self, org_id: str, key_id: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def agents_in_org(self, org_id: str, agent_ids: list[str]) -> set[str]:
        """Which of ``agent_ids`` are agents of the org (a key may only be limited to its own)."""
        stmt = select(Agent.id).where(Agent.org_id == org_id, Agent.id.in_(agent_ids))
        return set((await self.session.scalars(stmt)).all())

    async def spent_this_month(self, org_id: str, month: date) -> dict[str, int]:
        """Each of the org's keys' spend this month (keys that spent nothing are left out)."""
        stmt = (
            select(ApiKeySpend.api_key_id, ApiKeySpend.spent_cents)
            .join(ApiKey, ApiKey.id == ApiKeySpend.api_key_id)
            .where(ApiKey.org_id == org_id, ApiKeySpend.month == month)
        )
        return {key_id: int(spent) for key_id, spent in (await self.session.execute(stmt)).all()}
