"""Hybrid search over an agent's chunks: full-text and vector rankings fused by reciprocal rank.

One statement per search. The full-text side ORs the question's words (``plainto_tsquery`` ANDs them,
which misses most natural questions) and ranks with ``ts_rank_cd``; the vector side uses the HNSW index
(cosine) with iterative scans, so filtering by agent still finds enough neighbours. Each side contributes
``1 / (60 + rank)`` for its top ``CANDIDATES``. Without an embedding provider, or for a question that cannot
be embedded, only the full-text side runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

RRF_K = 60
CANDIDATES = 50

_FTS = """
fts AS (
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r FROM (
        SELECT c.id, ts_rank_cd(c.tsv, q.q) AS rank
        FROM document_chunks c, q
        WHERE c.org_id = :org_id AND c.agent_id = :agent_id AND c.tsv @@ q.q
        ORDER BY rank DESC LIMIT :candidates
    ) s
)"""
_VEC = """
vec AS (
    SELECT id, row_number() OVER (ORDER BY distance, id) AS r FROM (
        SELECT c.id, c.embedding <=> CAST(:vector AS vector) AS distance
        FROM document_chunks c
        WHERE c.org_id = :org_id AND c.agent_id = :agent_id AND c.embedding_model = :model
        ORDER BY c.embedding <=> CAST(:vector AS vector) LIMIT :candidates
    ) s
)"""
_QUERY = "q AS (SELECT replace(plainto_tsquery('english', :query)::text, '&', '|')::tsquery AS q)"
_RESULT = """
SELECT f.id, f.score, c.document_id, c.heading, c.text, d.title
FROM (
    SELECT id, sum(1.0 / ({k} + r)) AS score FROM ({ranked}) u GROUP BY id
) f
JOIN document_chunks c ON c.id = f.id
JOIN documents d ON d.id = c.document_id
ORDER BY f.score DESC, f.id LIMIT :top_k
"""
# Built from the constants above; every value is a bound parameter.
FTS_ONLY = text(
    "WITH " + _QUERY + "," + _FTS + _RESULT.format(k=RRF_K, ranked="SELECT id, r FROM fts")  # noqa: S608
)
HYBRID = text(
    "WITH "  # noqa: S608
    + _QUERY
    + ","
    + _FTS
    + ","
    + _VEC
    + _RESULT.format(k=RRF_K, ranked="SELECT id, r FROM fts UNION ALL SELECT id, r FROM vec")
)


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    document_id: str
    title: str
    heading: str
    text: str
    score: float


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vector) + "]"


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
    params: dict[str, object] = {
        "org_id": org_id,
        "agent_id": agent_id,
        "query": query,
        "top_k": top_k,
        "candidates": max(CANDIDATES, top_k),
    }
    statement = FTS_ONLY
    if vector is not None and model is not None:
        # Keep walking the HNSW graph until enough rows pass the agent filter.
        await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        params.update(vector=vector_literal(vector), model=model)
        statement = HYBRID
    rows = (await session.execute(statement, params)).all()
    return [
        Passage(
            chunk_id=row.id,
            document_id=row.document_id,
            title=row.title,
            heading=row.heading,
            text=row.text,
            score=float(row.score),
        )
        for row in rows
    ]
