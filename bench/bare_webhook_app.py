"""The webhook reference: a bare FastAPI handler that stores each posted event with one INSERT.

No signature check, no idempotency logic beyond the primary key, no ORM: the least a webhook endpoint
can do. Reads its database URL from ``BENCH_DATABASE_URL`` (an asyncpg URL).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request

pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], min_size=2, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_events (id text PRIMARY KEY, body jsonb)")
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, str]:
    body = await request.body()
    event = json.loads(body)
    assert pool is not None
    await pool.execute(
        "INSERT INTO bench_events (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        str(event.get("id") or event.get("update_id")),
        body.decode(),
    )
    return {"status": "ok"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
