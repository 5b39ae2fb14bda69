"""The async engine and the unit of work that wraps each request and each job in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from hutch.db.urls import asyncpg_url

DeferJob = Callable[[str, dict[str, Any]], Awaitable[int]]


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "hutch"}},
    )


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


@dataclass
class UnitOfWork:
    """One transaction. Services flush; only the owner (request dependency or job wrapper) commits.

    Jobs asked for during the transaction are deferred after it commits, and dropped if it rolls back,
    so a job never runs before the rows it needs are visible.
    """

    session: AsyncSession
    pending_jobs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def defer(self, task_name: str, **kwargs: Any) -> None:
        self.pending_jobs.append((task_name, kwargs))

    async def commit(self, defer_job: DeferJob | None) -> None:
        await self.session.commit()
        jobs, self.pending_jobs = self.pending_jobs, []
        if defer_job is not None:
            for task_name, kwargs in jobs:
                await defer_job(task_name, kwargs)

    async def rollback(self) -> None:
        self.pending_jobs.clear()
        await self.session.rollback()
