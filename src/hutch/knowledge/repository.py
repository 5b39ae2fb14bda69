"""Every query on documents and their chunks, the hybrid search among them.

Documents are reached through their agent, which the caller has read within the principal's rights
(``AgentRepository.get``): filtering by agent is the tenancy filter here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.knowledge.models import Chunk, Document

# Hybrid search over an agent's chunks: full-text and vector rankings fused by reciprocal rank.
#
# One statement per search. The full-text side ORs the question's words (``plainto_tsquery`` ANDs them,
# which misses most natural questions) and ranks with ``ts_rank_cd``; the vector side uses the HNSW index
# (cosine) with iterative scans, so filtering by agent still finds enough neighbours. Each side contributes
# ``1 / (60 + rank)`` for its top ``CANDIDATES``. Without an embedding provider, or for a question that
# cannot be embedded, only the full-text side runs.
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
# Keep walking the HNSW graph until enough rows pass the agent filter.
_ITERATIVE_SCAN = text("SET LOCAL hnsw.iterative_scan = relaxed_order")

_HAS_KNOWLEDGE = select(exists().where(Chunk.agent_id == bindparam("agent_id")))  # asked on every turn

_LOST_INGESTIONS = text(
    """
    SELECT d.id FROM documents d
    WHERE d.status = 'pending' AND d.created_at < now() - interval '2 minutes'
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.task_name = :job AND j.args ->> 'document_id' = d.id
      )
    ORDER BY d.created_at LIMIT 500
    """
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


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def with_content(self, agent_id: str, content_hash: str) -> Document | None:
        """The agent's document of these bytes, if they were uploaded before."""
        return await self.session.scalar(
            select(Document).where(Document.agent_id == agent_id, Document.content_hash == content_hash)
        )

    async def bytes_stored(self, org_id: str) -> int:
        """The size of every document of the org, together."""
        used = await self.session.scalar(
            select(func.coalesce(func.sum(Document.size_bytes), 0)).where(Document.org_id == org_id)
        )
        return int(used or 0)

    async def count_of_agent(self, agent_id: str) -> int:
        stmt = select(func.count()).select_from(Document).where(Document.agent_id == agent_id)
        return int(await self.session.scalar(stmt) or 0)

    async def of_agent(self, agent_id: str) -> list[Document]:
        """The agent's documents, newest first."""
        stmt = (
            select(Document)
            .where(Document.agent_id == agent_id)
            .order_by(Document.created_at.desc(), Document.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def get_of_agent(self, agent_id: str, document_id: str) -> Document | None:
        return await self.session.scalar(
            select(Document).where(Document.id == document_id, Document.agent_id == agent_id)
        )

    async def delete(self, document_id: str) -> None:
        await self.session.execute(delete(Document).where(Document.id == document_id))  # chunks cascade

    async def mark_agent_has_documents(self, agent_id: str) -> None:
        # Not a change of the agent's settings: its ``updated_at`` stays.
        await self.session.execute(
            update(Agent)
            .where(Agent.id == agent_id)
            .values(has_documents=True, updated_at=Agent.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def lost_ingestions(self, job: str) -> list[str]:
        """Documents pending for a while with no ``job`` queued for them (oldest first, up to 500)."""
        return list((await self.session.scalars(_LOST_INGESTIONS, {"job": job})).all())


class ChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def any_of_agent(self, agent_id: str) -> bool:
        return bool(await self.session.scalar(_HAS_KNOWLEDGE, {"agent_id": agent_id}))

    async def delete_of_document(self, document_id: str) -> None:
        await self.session.execute(delete(Chunk).where(Chunk.document_id == document_id))

    async def lock_to_embed(self, model_id: str, limit: int) -> Sequence[Row[str, str, str, str]]:
        """Up to ``limit`` chunks without vectors of ``model_id`` (id, org_id, heading, text), by org, locked;
        those others hold locked are skipped."""
        return (
            await self.session.execute(
                select(Chunk.id, Chunk.org_id, Chunk.heading, Chunk.text)
                .where(or_(Chunk.embedding_model.is_(None), Chunk.embedding_model != model_id))
                .order_by(Chunk.org_id, Chunk.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()

    async def set_embedding(self, chunk_id: str, vector: list[float], model_id: str) -> None:
        await self.session.execute(
            update(Chunk).where(Chunk.id == chunk_id).values(embedding=vector, embedding_model=model_id)
        )

    async def search(
        self,
        *,
        org_id: str,
        agent_id: str,
        query: str,
        top_k: int,
        vector: list[float] | None = None,
        model: str | None = None,
    ) -> list[Passage]:
        """The agent's best passages for ``query``: hybrid given a vector of ``model``, else full-text."""
        params: dict[str, object] = {
            "org_id": org_id,
            "agent_id": agent_id,
            "query": query,
            "top_k": top_k,
            "candidates": max(CANDIDATES, top_k),
        }
        statement = FTS_ONLY
        if vector is not None and model is not None:
            await self.session.execute(_ITERATIVE_SCAN)
            params.update(vector=vector_literal(vector), model=model)
            statement = HYBRID
        rows = (await self.session.execute(statement, params)).all()
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
