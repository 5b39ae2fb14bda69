"""Knowledge use cases: upload (checked, deduplicated, within quota), list, delete, search."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.agents.service import org_credentials
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.core.errors import HutchError, NotFound, QuotaExceeded
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.quota import lock_org
from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.engine.catalog import Credentials
from hutch.knowledge.embeddings import EmbeddingProvider
from hutch.knowledge.models import Document, DocumentSource, DocumentStatus
from hutch.knowledge.repository import ChunkRepository, DocumentRepository, Passage

INGEST_JOB = "knowledge.ingest"
BYTES_PER_MB = 1024 * 1024


class DocumentTooLarge(HutchError):
    status_code = 413

    def __init__(self, limit_mb: int) -> None:
        super().__init__(
            f"Documents can be up to {limit_mb} MB; split the file or raise HUTCH_KNOWLEDGE_MAX_UPLOAD_MB."
        )


class KnowledgeService:
    def __init__(
        self,
        uow: UnitOfWork,
        plans: PlanCatalog,
        embedder: EmbeddingProvider | None,
        secret_box: SecretBox,
        max_upload_mb: int,
    ) -> None:
        self.uow = uow
        self.session: AsyncSession = uow.session
        self.stored = DocumentRepository(uow.session)
        self.quotas = Quotas(uow.session, plans)
        self.embedder = embedder
        self.secret_box = secret_box
        self.max_upload_mb = max_upload_mb

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> KnowledgeService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(
            uow,
            resources.plans,
            resources.embedder,
            resources.secret_box,
            resources.settings.knowledge_max_upload_mb,
        )

    async def agent(self, principal: Principal, agent_id: str) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def upload(
        self, principal: Principal, agent_id: str, title: str, data: bytes, kind: str
    ) -> tuple[Document, bool]:
        """The new document (queued for ingestion), or the same content uploaded before: (doc, created)."""
        agent = await self.agent(principal, agent_id)
        if len(data) > self.max_upload_mb * BYTES_PER_MB:
            raise DocumentTooLarge(self.max_upload_mb)
        content_hash = hashlib.sha256(data).hexdigest()
        # Uploads of one org queue here, so the duplicate check and the storage sum below cannot race.
        await lock_org(self.session, agent.org_id)
        plan = await self.quotas.check_count(
            agent.org_id, "documents_per_agent", lambda: self.stored.count_of_agent(agent.id)
        )
        existing = await self.stored.with_content(agent.id, content_hash)
        if existing is not None:
            return existing, False
        storage_mb = plan.limits.storage_mb
        if storage_mb is not None:
            used = await self.stored.bytes_stored(agent.org_id)
            if used + len(data) > storage_mb * BYTES_PER_MB:
                raise QuotaExceeded(
                    "storage_mb",
                    plan.id,
                    f"The {plan.name} plan stores {storage_mb} MB of documents; "
                    "delete some or upgrade the plan.",
                )
        document = Document(
            id=new_id("doc"),
            org_id=agent.org_id,
            agent_id=agent.id,
            title=title,
            kind=kind,
            size_bytes=len(data),
            content_hash=content_hash,
            status=DocumentStatus.PENDING,
        )
        self.session.add(document)
        await self.session.flush()
        self.session.add(DocumentSource(document_id=document.id, data=data))
        await self.session.flush()
        if not agent.has_documents:
            await self.stored.mark_agent_has_documents(agent.id)
        self.uow.defer(INGEST_JOB, document_id=document.id)
        return document, True

    async def documents(self, principal: Principal, agent_id: str) -> list[Document]:
        agent = await self.agent(principal, agent_id)
        return await self.stored.of_agent(agent.id)

    async def document(self, principal: Principal, agent_id: str, document_id: str) -> Document:
        agent = await self.agent(principal, agent_id)
        document = await self.stored.get_of_agent(agent.id, document_id)
        if document is None:
            raise NotFound("Document")
        return document

    async def delete(self, principal: Principal, agent_id: str, document_id: str) -> None:
        document = await self.document(principal, agent_id, document_id)
        await self.stored.delete(document.id)  # chunks cascade

    async def search(self, principal: Principal, agent_id: str, query: str, top_k: int) -> list[Passage]:
        agent = await self.agent(principal, agent_id)
        return await retrieve(self.session, self.embedder, self.secret_box, agent, query, top_k)


async def has_knowledge(session: AsyncSession, agent: Agent) -> bool:
    """Whether the agent has searchable passages (asked of the database only once it has had documents)."""
    return agent.has_documents and await ChunkRepository(session).any_of_agent(agent.id)


async def embed_query(
    embedder: EmbeddingProvider | None, keys: dict[str, Credentials], query: str
) -> list[float] | None:
    """The question's embedding, or None (no provider, or a failing one: search then degrades to full-text).
    Needs no database, so a turn computes it holding no connection."""
    if embedder is None or not query.strip():
        return None
    try:
        return (await embedder.embed([query], keys))[0]
    except Exception:  # noqa: BLE001 - a failing provider degrades search to full-text, never an error
        return None


async def retrieve(
    session: AsyncSession,
    embedder: EmbeddingProvider | None,
    secret_box: SecretBox,
    agent: Agent,
    query: str,
    top_k: int,
    *,
    keys: dict[str, Credentials] | None = None,
) -> list[Passage]:
    """The agent's best passages for ``query``: hybrid when the question can be embedded, else full-text.
    ``keys``: the org's provider keys, when the caller has them already."""
    if embedder is not None and keys is None and query.strip():
        keys = await org_credentials(session, secret_box, agent.org_id)
    vector = await embed_query(embedder, keys or {}, query)
    return await search_with(session, embedder, agent, query, top_k, vector)


async def search_with(
    session: AsyncSession,
    embedder: EmbeddingProvider | None,
    agent: Agent,
    query: str,
    top_k: int,
    vector: list[float] | None,
) -> list[Passage]:
    """The agent's best passages for ``query``, with its embedding already computed (or None)."""
    return await ChunkRepository(session).search(
        org_id=agent.org_id,
        agent_id=agent.id,
        query=query,
        top_k=top_k,
        vector=vector,
        model=embedder.model_id if embedder is not None and vector is not None else None,
    )
