"""The async engine and the unit of work that wraps each request and each job in one transaction."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from sqlalchemy import event, func, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hutch.db.carried import Carried
from hutch.db.urls import asyncpg_url

# Carried by the statement storing what a caller who waits for the answer sent: its transaction commits
# without waiting for the disk. PostgreSQL writes its log in order, so the answer's commit, which does wait,
# makes it durable too. Only a database crash within that moment (a fraction of a second) loses it, and then
# the request fails: the caller, who still holds what they sent, is told. Webhooks never use this: their
# sender is answered before any reply exists.
NO_FLUSH_WAIT = Carried(columns=(func.set_config("synchronous_commit", "off", True).label("no_flush_wait"),))
# A pooled connection idle this long is checked before use (PostgreSQL restarted, a proxy dropped it).
IDLE_PING_SECONDS = 10.0


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"server_settings": {"application_name": "hutch"}},
        # A failed statement's message (logged with the 500 it becomes) names no values: they may be a
        # password's hash, a key's digest or what a caller typed.
        hide_parameters=True,
    )
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    SQLAlchemy's ``pool_pre_ping`` checks at every checkout, which costs three round trips per request
    under asyncpg; connections in steady use are known to be alive. A connection whose last use failed
    on the client side (not an error PostgreSQL reported) is checked too, so a connection that died
    while busy fails one request, not every request until it idles. A dead one is replaced by the pool.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _suspect(context: ExceptionContext) -> None:
        reported_by_server = isinstance(context.original_exception.__cause__, asyncpg.PostgresError)
        if context.connection is not None and not context.is_disconnect and not reported_by_server:
            context.connection.info["suspect"] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        suspect = record.info.pop("suspect", False)
        if not suspect and (idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS):
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("connection lost while idle") from exc


class Database:
    """Owns the connection pool. Built once at start-up from settings and handed out by dependencies."""

    def __init__(
        self,
        url: str | None = None,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        engine: AsyncEngine | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        if engine is None:
            if url is None:
                raise ValueError("Database needs a URL or an engine")
            engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.engine: AsyncEngine = engine
        self.sessionmaker = sessionmaker or async_sessionmaker(engine, expire_on_commit=False)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class JobSink(Protocol):
    """Where a unit of work queues its jobs, inside its own transaction (``hutch.db.jobs.JobOutbox``)."""

    async def defer_within(
        self,
        session: AsyncSession | AsyncConnection,
        task_name: str,
        *,
        lock: str | None = None,
        **kwargs: Any,
    ) -> None: ...

    async def defer_after(
        self,
        db: AsyncSession | AsyncConnection,
        writes: str,
        params: dict[str, Any],
        task_name: str,
        *,
        lock: str | None = None,
        **kwargs: Any,
    ) -> bool: ...


class JobsNotQueued(RuntimeError):
    """A unit of work without a job sink was asked to queue jobs: refusing beats losing them."""


@dataclass
class UnitOfWork:
    """One transaction at a time. Services flush; only the owner commits, through :meth:`checkpoint`.

    Jobs asked for during a transaction are queued in it just before it commits, so a job exists if, and
    only if, the rows it needs do: dropped on rollback, never lost between a commit and a deferral. Every
    owner of a transaction (request, job, CLI, voice worker, a turn's phases) goes through one of these;
    :func:`unit_of_work` opens one.
    """

    session: AsyncSession
    jobs: JobSink | None = None
    pending_jobs: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    def defer(self, task_name: str, *, lock: str | None = None, **kwargs: Any) -> None:
        self.pending_jobs.append((task_name, lock, kwargs))

    async def checkpoint(self) -> None:
        """Commit what was written so far with the jobs asked for; the unit goes on with a new transaction
        when used again (the connection goes back to the pool meanwhile)."""
        jobs, self.pending_jobs = self.pending_jobs, []
        if jobs:
            if self.jobs is None:
                raise JobsNotQueued(f"no job sink to queue {', '.join(name for name, _, _ in jobs)}")
            for task_name, lock, kwargs in jobs:
                await self.jobs.defer_within(self.session, task_name, lock=lock, **kwargs)
        await self.session.commit()

    async def rollback(self) -> None:
        self.pending_jobs.clear()
        await self.session.rollback()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        """Statements inside commit each on its own, saving the round trips of ``BEGIN`` and ``COMMIT``: for a
        statement that is atomic by itself (one carrying its related writes, see ``Carried``).

        Inside an open transaction they join it, as they must: they belong with what it wrote. So does a
        session bound to a connection (not an engine), whose owner runs the transaction.
        """
        await self.session.flush()  # pending changes open a transaction: the statement then joins it
        if self.session.in_transaction() or not isinstance(self.session.bind, AsyncEngine):
            yield
            return
        await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        try:
            yield
        except BaseException:
            await self.session.rollback()
            raise
        await self.session.commit()  # gives the connection back to the pool, which resets its isolation


@asynccontextmanager
async def unit_of_work(database: Database, jobs: JobSink | None) -> AsyncIterator[UnitOfWork]:
    """A unit of work on a session of its own: committed (with its jobs) when the block ends, rolled back if
    it raises. An exception whose ``keeps_changes`` is true (a refusal that must leave a trace, such as an
    alert) commits what was written before it propagates."""
    async with database.sessionmaker() as session:
        uow = UnitOfWork(session, jobs)
        try:
            yield uow
        except BaseException as exc:
            if getattr(exc, "keeps_changes", False):
                await uow.checkpoint()
            else:
                await uow.rollback()
            raise
        await uow.checkpoint()
