"""Ingestion and re-embedding jobs.

Ingestion parses the stored file, chunks it and stores the chunks in batches, committing after each so
``chunks_done / chunks_total`` shows progress. A retried job starts the document over. When embedding
fails, the chunks are stored without vectors (full-text search still finds them) and the periodic
re-embedding job fills them in later; it also remakes vectors made by another provider.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from hutch.agents.service import org_credentials
from hutch.billing.quotas import Quotas
from hutch.billing.repository import UsageCounts
from hutch.core.ids import new_id
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.knowledge.chunking import chunk_sections
from hutch.knowledge.models import Chunk, Document, DocumentSource, DocumentStatus
from hutch.knowledge.parsing import UnreadableDocument, parse
from hutch.knowledge.repository import ChunkRepository, DocumentRepository
from hutch.knowledge.service import INGEST_JOB

log = structlog.get_logger(__name__)
BATCH = 64
REEMBED_JOB = "knowledge.reembed"
REEMBED_BATCHES_PER_RUN = 50


@job(INGEST_JOB, queue="knowledge")
async def ingest_document(ctx: JobContext, document_id: str) -> str:
    session = ctx.uow.session
    document = await session.get(Document, document_id, with_for_update=True)
    if document is None:
        return "gone"
    source = await session.get(DocumentSource, document_id)
    assert source is not None
    await ChunkRepository(session).delete_of_document(document_id)  # a retry starts over
    try:
        sections = parse(source.data, document.kind)
        if not sections:
            raise UnreadableDocument("The document has no text.")
    except UnreadableDocument as exc:
        document.status, document.error = DocumentStatus.FAILED, str(exc)
        log.info("document failed", document_id=document_id, reason=str(exc))
        return "failed"
    drafts = chunk_sections(sections)
    document.status, document.error = DocumentStatus.PROCESSING, None
    document.chunks_total, document.chunks_done, document.chunk_count = len(drafts), 0, 0
    await ctx.uow.checkpoint()

    embedder = ctx.resources.embedder
    keys = await org_credentials(session, ctx.resources.secret_box, document.org_id) if embedder else {}
    embedding_failed = False
    for start in range(0, len(drafts), BATCH):
        batch = drafts[start : start + BATCH]
        vectors: list[list[float]] | None = None
        if embedder is not None and not embedding_failed:
            try:
                vectors = await embedder.embed([f"{d.heading}\n{d.text}".strip() for d in batch], keys)
            except Exception as exc:  # noqa: BLE001 - stored without vectors; re-embedded later
                embedding_failed = True
                log.warning(
                    "embedding failed; stored for full-text search", document_id=document_id, error=str(exc)
                )
        session.add_all(
            Chunk(
                id=new_id("chk"),
                org_id=document.org_id,
                agent_id=document.agent_id,
                document_id=document.id,
                position=draft.position,
                heading=draft.heading,
                text=draft.text,
                token_count=draft.token_count,
                content_hash=draft.content_hash,
                embedding=vectors[n] if vectors else None,
                embedding_model=embedder.model_id if vectors and embedder else None,
            )
            for n, draft in enumerate(batch)
        )
        document.chunks_done = start + len(batch)
        await ctx.uow.checkpoint()  # progress others can see
    document.status, document.chunk_count = DocumentStatus.READY, len(drafts)
    await Quotas(session, ctx.resources.plans).meter(
        document.org_id, datetime.now(UTC), UsageCounts(documents=1)
    )
    log.info("document ready", document_id=document_id, chunks=len(drafts))
    return "ready"


@job(REEMBED_JOB, queue=HOUSEKEEPING_QUEUE, cron="*/10 * * * *", retry=False)
async def reembed_chunks(ctx: JobContext, timestamp: int = 0) -> int:
    """Give vectors of the current provider to chunks without them (or with another provider's)."""
    embedder = ctx.resources.embedder
    if embedder is None:
        return 0
    session = ctx.uow.session
    chunks = ChunkRepository(session)
    done = 0
    for _ in range(REEMBED_BATCHES_PER_RUN):
        rows = await chunks.lock_to_embed(embedder.model_id, BATCH)
        if not rows:
            break
        keys = await org_credentials(session, ctx.resources.secret_box, rows[0].org_id)
        rows = [r for r in rows if r.org_id == rows[0].org_id]  # one org's key per request
        vectors = await embedder.embed([f"{r.heading}\n{r.text}".strip() for r in rows], keys)
        for row, vector in zip(rows, vectors, strict=True):
            await chunks.set_embedding(row.id, vector, embedder.model_id)
        await ctx.uow.checkpoint()
        done += len(rows)
    if done:
        log.info("chunks re-embedded", chunks=done, model=embedder.model_id)
    return done


@job("knowledge.requeue_lost_ingestions", cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def requeue_lost_ingestions(ctx: JobContext, timestamp: int = 0) -> int:
    """A document stored without its ingestion job (the process died between the two) gets the job."""
    ids = await DocumentRepository(ctx.uow.session).lost_ingestions(INGEST_JOB)
    for document_id in ids:
        ctx.uow.defer(INGEST_JOB, document_id=document_id)
    return len(ids)
