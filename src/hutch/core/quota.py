"""Race-free quota primitives, shared by every domain that counts against a limit.

Two shapes: *counted* resources (agents, documents, runtimes) are checked under a lock on the org's row,
so concurrent creates in one org queue up and exactly ``limit`` succeed; *metered* events (messages) are
reserved with one conditional upsert on a counter row, which PostgreSQL applies atomically. Both run in
the caller's transaction, so a request that fails later gives its reservation back by rolling back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_org(session: AsyncSession, org_id: str) -> None:
    """Serialise this org's quota checks until the transaction ends."""
    await session.execute(text("SELECT 1 FROM orgs WHERE id = :org_id FOR UPDATE"), {"org_id": org_id})


def reserve_statement(
    table: str,
    key_columns: tuple[str, ...],
    counter: str,
    limit: str = "limit",
    keys: dict[str, str] | None = None,
    after: str | None = None,
) -> str:
    """``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` adding ``:amount`` to ``counter`` unless that passes
    ``:<limit>`` (NULL: no limit); returns the new value, or no row when the limit would be passed.
    ``keys`` renames key parameters (column → parameter) so two reservations can share one statement.
    ``after`` names a CTE of the same statement: the reservation is made once per row it returns (none, no
    reservation), after that row's writes and locks."""
    names = keys or {}
    columns = ", ".join(key_columns)
    values = ", ".join(f":{names.get(c, c)}" for c in key_columns)
    cap = f"CAST(:{limit} AS integer)"
    source = f" FROM {after}" if after else ""
    return (
        f"INSERT INTO {table} ({columns}, {counter}) "
        f"SELECT {values}, CAST(:amount AS integer){source} "
        f"WHERE {cap} IS NULL OR CAST(:amount AS integer) <= {cap} "
        f"ON CONFLICT ({columns}) DO UPDATE SET {counter} = {table}.{counter} + EXCLUDED.{counter} "
        f"WHERE {cap} IS NULL OR {table}.{counter} + EXCLUDED.{counter} <= {cap} "
        f"RETURNING {counter}"
    )


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def month_start(moment: datetime) -> date:
    return utc_day(moment).replace(day=1)


def seconds_until_next_day(moment: datetime) -> int:
    now = moment.astimezone(UTC)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, int((tomorrow - now).total_seconds()) + 1)
