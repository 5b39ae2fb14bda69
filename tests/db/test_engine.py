"""The connection pool (connections that died while idle are replaced before a request uses them) and
statements run outside a transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from hutch.db import engine as engine_module
from hutch.db.engine import Database, UnitOfWork, create_engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)


@pytest.mark.parametrize("idle_ping_seconds", [0.0, 3600.0])
async def test_a_connection_killed_while_idle(
    database_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping_seconds: float
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", idle_ping_seconds)
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        async with other.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        if idle_ping_seconds:
            # Used again at once, without a check: that request fails, which makes the connection suspect.
            with pytest.raises(DBAPIError):
                await _backend_pid(engine)
        # Idle long enough, or suspect since it failed: checked, found dead, replaced.
        assert await _backend_pid(engine) not in (0, first)
    finally:
        await engine.dispose()
        await other.dispose()


async def test_an_error_postgresql_reports_leaves_the_connection_trusted(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError):
                await conn.execute(text("SELECT 1/0"))
            assert "suspect" not in conn.info
    finally:
        await engine.dispose()


_TRANSACTION_ID = text("SELECT pg_current_xact_id()::text")


async def test_statements_alone_commit_each_on_their_own(database_url: str) -> None:
    database = Database(database_url, pool_size=1, max_overflow=0)
    try:
        async with database.sessionmaker() as session:
            uow = UnitOfWork(session)
            async with uow.alone():
                first = await session.scalar(_TRANSACTION_ID)
                second = await session.scalar(_TRANSACTION_ID)
            assert first != second  # no BEGIN: each statement is its own transaction
            assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            # After it, statements share a transaction again; inside an open one, they join it.
            third = await session.scalar(_TRANSACTION_ID)
            async with uow.alone():
                fourth = await session.scalar(_TRANSACTION_ID)
            assert third == fourth
            await session.rollback()
    finally:
        await database.dispose()


async def test_statements_alone_join_the_transaction_of_a_session_bound_to_a_connection(
    session: AsyncSession,
) -> None:
    """Tests bind sessions to a connection whose transaction they roll back: nothing may commit past it."""
    async with UnitOfWork(session).alone():
        first = await session.scalar(_TRANSACTION_ID)
        second = await session.scalar(_TRANSACTION_ID)
    assert first == second
