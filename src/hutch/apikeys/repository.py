"""Every query on API keys and their spend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.models import ApiKey, ApiKeySpend


@dataclass(frozen=True)
class KeyWithSpend:
    key: ApiKey
    spent_this_month_cents: int


# Built once: authentication runs it on every request, and building a statement costs more than running it.
_KEY_WITH_SPEND = (
    select(ApiKey, ApiKeySpend.spent_cents)
    .outerjoin(
        ApiKeySpend, and_(ApiKeySpend.api_key_id == ApiKey.id, ApiKeySpend.month == bindparam("month"))
    )
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash_with_spend(self, key_hash: str, month: date) -> KeyWithSpend | None:
        """The key and this month's spend in one query (authentication runs it on every request)."""
        row = (await self.session.execute(_KEY_WITH_SPEND, {"key_hash": key_hash, "month": month})).first()
        if row is None:
            return None
        return KeyWithSpend(row[0], int(row[1] or 0))

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
