"""Hybrid search over an agent's chunks: full-text and vector rankings fused by reciprocal rank.

One statement per search (built once, in :mod:`hutch.knowledge.repository`, which tells how it ranks).
Without an embedding provider, or for a question that cannot be embedded, only the full-text side runs.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.knowledge.repository import (
    CANDIDATES,
    FTS_ONLY,
    HYBRID,
    RRF_K,
    ChunkRepository,
    Passage,
    vector_literal,
)

__all__ = ["CANDIDATES", "FTS_ONLY", "HYBRID", "RRF_K", "Passage", "search_chunks", "vector_literal"]


async def search_chunks(
    session: AsyncSession,
    *,
    org_id: str,
    agent_id: str,
    query: str,
    top_k: int,
    vector: list[float] | None = None,
    model: str | None = None,
) -> list[Passage]:
    return await ChunkRepository(session).search(
        org_id=org_id, agent_id=agent_id, query=query, top_k=top_k, vector=vector, model=model
    )
