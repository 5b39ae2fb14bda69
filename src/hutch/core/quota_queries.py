"""The SQL of the quota primitives (:mod:`hutch.core.quota`): the org lock and the counter reservation."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_LOCK_ORG = text("SELECT 1 FROM orgs WHERE id = :org_id FOR UPDATE")


async def lock_org(session: AsyncSession, org_id: str) -> None:
    """Serialise this org's quota checks until the transaction ends."""
    await session.execute(_LOCK_ORG, {"org_id": org_id})


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
