"""The reference: a bare FastAPI app with one /healthz route, served by uvicorn like Hutch."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
