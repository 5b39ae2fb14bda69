"""What readiness asks the database: which migrations its schema is at."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_HAS_VERSION_TABLE = text("SELECT to_regclass('alembic_version') IS NOT NULL")
_VERSIONS = text("SELECT version_num FROM alembic_version")


async def applied_revisions(conn: AsyncConnection) -> set[str]:
    """The revisions the schema is at; none before the first migration (no ``alembic_version`` table)."""
    has_table = await conn.scalar(_HAS_VERSION_TABLE)
    return set((await conn.scalars(_VERSIONS)).all()) if has_table else set()
