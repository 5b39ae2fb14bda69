"""A burst larger than the database pool serves answers 503 with Retry-After, not 500."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hutch.core.errors import install_error_handlers
from hutch.db.urls import asyncpg_url
from tests.conftest import asgi_client


async def test_a_pool_with_no_free_connection_answers_503(database_url: str) -> None:
    engine = create_async_engine(asyncpg_url(database_url), pool_size=1, max_overflow=0, pool_timeout=0.2)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/busy")
    async def busy() -> dict[str, int]:
        async with engine.connect() as conn:  # the pool's only connection is already taken
            return {"one": int(await conn.scalar(text("SELECT 1")) or 0)}

    try:
        async with engine.connect(), asgi_client(app) as client:
            answer = await client.get("/busy")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
        assert "database is busy" in answer.json()["detail"]
        async with asgi_client(app) as client:  # and once a connection is free, it answers
            assert (await client.get("/busy")).json() == {"one": 1}
    finally:
        await engine.dispose()
