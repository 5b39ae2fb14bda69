"""Documents in, passages out: file types, progress, duplicates, failures, relevance, isolation, quota."""

from __future__ import annotations

import asyncio
import io
import itertools
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.db.engine import Database
from hutch.knowledge.chunking import chunk_sections, count_tokens
from hutch.knowledge.embeddings import LocalEmbeddings
from hutch.knowledge.models import Chunk, Document
from hutch.knowledge.parsing import Section, UnreadableDocument, parse
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import LiveDeployment, RecordingJobQueue, asgi_client, build_test_resources
from tests.conversations.test_chat import tool_call
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.knowledge.corpus import QUESTIONS, SECTIONS, handbook_markdown
from tests.knowledge.pdf import make_pdf


async def new_agent(client: AsyncClient, account: Account, name: str = "Helpdesk") -> str:
    created = await client.post(
        "/api/v1/agents", json={"name": name, "model": "demo/echo"}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def ingest(resources: Resources) -> list[Any]:
    assert isinstance(resources.jobs, RecordingJobQueue)
    return await resources.jobs.run_pending()


async def upload_file(
    client: AsyncClient, account: Account, agent_id: str, name: str, data: bytes, media_type: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/agents/{agent_id}/documents",
        files={"file": (name, data, media_type)},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_each_file_type_is_read_chunked_and_found(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    agent_id = await new_agent(client, owner)
    url = f"/api/v1/agents/{agent_id}/documents"
    as_json = await client.post(
        url,
        json={"title": "Returns", "content": "Parcels can be returned within 30 days."},
        headers=owner.headers,
    )
    assert as_json.status_code == 201 and as_json.json()["status"] == "pending"
    await upload_file(
        client, owner, agent_id, "notes.txt", b"The office cat is called Biscuit.", "text/plain"
    )
    await upload_file(
        client,
        owner,
        agent_id,
        "guide.md",
        b"# Guide\n## Wifi\nThe wifi password is on the fridge.",
        "text/markdown",
    )
    page = b"<html><body><h1>Parking</h1><p>Visitors park on level minus two.</p>"
    page += b"<script>x()</script></body></html>"
    await upload_file(client, owner, agent_id, "parking.html", page, "text/html")
    pdf = make_pdf(
        [["Fire safety", "The assembly point is the blue gate."], ["First aid kits hang by the lifts."]]
    )
    await upload_file(client, owner, agent_id, "safety.pdf", pdf, "application/pdf")
    assert await ingest(resources) == ["ready"] * 5

    documents = (await client.get(url, headers=owner.headers)).json()["items"]
    assert {d["kind"] for d in documents} == {"txt", "md", "html", "pdf"}
    assert all(d["status"] == "ready" and d["chunk_count"] >= 1 for d in documents)
    assert all(d["chunks_done"] == d["chunks_total"] == d["chunk_count"] for d in documents)

    async def top(query: str) -> dict[str, Any]:
        found = await client.post(
            f"/api/v1/agents/{agent_id}/knowledge/search", json={"query": query}, headers=owner.headers
        )
        assert found.status_code == 200
        hits: list[dict[str, Any]] = found.json()["items"]
        assert hits, query
        return hits[0]

    assert "Biscuit" in (await top("What is the cat called?"))["text"]
    wifi = await top("wifi password")
    assert wifi["heading"] == "Guide > Wifi" and wifi["title"] == "guide.md"
    assert "level minus two" in (await top("where do visitors park"))["text"]
    assert "script" not in (await top("where do visitors park"))["text"]
    first_aid = await top("first aid kits")
    assert first_aid["heading"] == "Page 2" and first_aid["title"] == "safety.pdf"
    assert "30 days" in (await top("return a parcel"))["text"]


async def test_duplicates_failures_and_refusals(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    agent_id = await new_agent(client, owner)
    url = f"/api/v1/agents/{agent_id}/documents"
    first = await upload_file(client, owner, agent_id, "a.txt", b"Same words twice.", "text/plain")
    again = await client.post(
        url, files={"file": ("b.txt", b"Same words twice.", "text/plain")}, headers=owner.headers
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    await ingest(resources)
    chunks = (await session.scalars(select(Chunk).where(Chunk.agent_id == agent_id))).all()
    assert len(chunks) == 1

    broken = await upload_file(
        client, owner, agent_id, "broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf"
    )
    scanned = await upload_file(client, owner, agent_id, "scan.pdf", make_pdf([[]]), "application/pdf")
    assert await ingest(resources) == ["failed", "failed"]
    broken_now = (await client.get(f"{url}/{broken['id']}", headers=owner.headers)).json()
    assert broken_now["status"] == "failed" and "cannot be read" in broken_now["error"]
    scanned_now = (await client.get(f"{url}/{scanned['id']}", headers=owner.headers)).json()
    assert "no text" in scanned_now["error"]

    exe = await client.post(
        url, files={"file": ("tool.exe", b"MZ...", "application/octet-stream")}, headers=owner.headers
    )
    assert exe.status_code == 415 and ".pdf" in exe.json()["detail"] and ".md" in exe.json()["detail"]
    form = await client.post(
        url, content=b"a=b", headers={**owner.headers, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415
    empty = await client.post(url, json={"title": "", "content": "x"}, headers=owner.headers)
    assert empty.status_code == 422

    deleted = await client.delete(f"{url}/{first['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert (await session.scalars(select(Chunk).where(Chunk.document_id == first["id"]))).all() == []
    assert (await client.get(f"{url}/{first['id']}", headers=owner.headers)).status_code == 404


async def test_size_limit_and_plan_quotas(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    agent_id = await new_agent(client, owner)
    url = f"/api/v1/agents/{agent_id}/documents"
    resources.settings = settings.model_copy(update={"knowledge_max_upload_mb": 1})
    too_big = await client.post(
        url, files={"file": ("big.txt", b"x" * (1024 * 1024 + 1), "text/plain")}, headers=owner.headers
    )
    assert too_big.status_code == 413 and "1 MB" in too_big.json()["detail"]
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="docs"))
    await session.commit()
    for n in range(2):
        ok = await client.post(
            url, json={"title": f"d{n}", "content": f"document {n}"}, headers=owner.headers
        )
        assert ok.status_code == 201
    third = await client.post(url, json={"title": "d2", "content": "document 2"}, headers=owner.headers)
    assert third.status_code == 402 and "2 documents per agent" in third.json()["detail"]
    other_agent = await new_agent(client, owner, "Second")
    big = await client.post(
        f"/api/v1/agents/{other_agent}/documents",
        json={"title": "big", "content": "y" * 600_000},
        headers=owner.headers,
    )
    assert big.status_code == 201
    over = await client.post(
        f"/api/v1/agents/{other_agent}/documents",
        json={"title": "bigger", "content": "z" * 600_000},
        headers=owner.headers,
    )
    assert over.status_code == 402 and "1 MB of documents" in over.json()["detail"]


async def test_agents_and_orgs_never_see_each_others_passages(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    neighbour = await create_account(session, settings)
    mine, sibling = await new_agent(client, owner), await new_agent(client, owner, "Sibling")
    theirs = await new_agent(client, neighbour)
    for account, agent_id, fact in (
        (owner, sibling, "The sibling agent knows the vault code 4711."),
        (neighbour, theirs, "The neighbour's vault code is 9876."),
        (owner, mine, "This agent knows the office opens at nine."),
    ):
        posted = await client.post(
            f"/api/v1/agents/{agent_id}/documents",
            json={"title": "facts", "content": fact},
            headers=account.headers,
        )
        assert posted.status_code == 201
    await ingest(resources)
    found = await client.post(
        f"/api/v1/agents/{mine}/knowledge/search", json={"query": "vault code"}, headers=owner.headers
    )
    assert found.json()["items"] == []
    foreign = await client.post(
        f"/api/v1/agents/{theirs}/knowledge/search", json={"query": "vault code"}, headers=owner.headers
    )
    assert foreign.status_code == 404


def test_chunks_keep_their_headings_overlap_and_size() -> None:
    sentences = " ".join(f"Sentence number {n} talks about kettles and tea." for n in range(200))
    drafts = chunk_sections([Section(("Manual", "Care"), sentences)], max_tokens=120, overlap=20)
    assert len(drafts) > 5
    assert all(d.heading == "Manual > Care" for d in drafts)
    assert all(d.token_count <= 120 + 20 for d in drafts)
    assert [d.position for d in drafts] == list(range(len(drafts)))
    # The end of each chunk opens the next one.
    for before, after in itertools.pairwise(drafts):
        assert before.text.split()[-1] in after.text.split()[:30]
    assert len({d.content_hash for d in drafts}) == len(drafts)
    assert count_tokens("Hello, world!") == 4


@pytest.fixture
async def handbook_resources(
    settings: Settings, database: Database, database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Resources]:
    provider = request.param
    if provider == "local" and not LocalEmbeddings.installed():
        pytest.skip("the local-embeddings extra is not installed (pip install 'hutch[local-embeddings]')")
    resources = build_test_resources(
        settings.model_copy(update={"embedding_provider": provider}), database, database_url
    )
    yield resources
    await resources.close()


@pytest.mark.parametrize("handbook_resources", ["none", "local"], indirect=True)
async def test_the_right_passage_ranks_first(
    handbook_resources: Resources, session: AsyncSession, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    async with asgi_client(create_app(resources=handbook_resources)) as client:
        owner = await create_account(session, settings)
        agent_id = await new_agent(client, owner)
        posted = await client.post(
            f"/api/v1/agents/{agent_id}/documents",
            json={"title": "Handbook", "content": handbook_markdown(), "format": "md"},
            headers=owner.headers,
        )
        assert posted.status_code == 201
        assert await ingest(handbook_resources) == ["ready"]
        chunks = (await session.scalars(select(Chunk).where(Chunk.agent_id == agent_id))).all()
        embedder = handbook_resources.embedder
        assert len(chunks) == len(SECTIONS)
        assert all(c.embedding_model == (embedder.model_id if embedder else None) for c in chunks)
        misses = []
        for question, section in QUESTIONS.items():
            found = await client.post(
                f"/api/v1/agents/{agent_id}/knowledge/search",
                json={"query": question, "top_k": 3},
                headers=owner.headers,
            )
            hits = found.json()["items"]
            if not hits or not hits[0]["heading"].endswith(section):
                misses.append((question, [h["heading"] for h in hits]))
        assert misses == [], misses


async def test_openai_embeddings_then_a_provider_outage_then_reembedding(
    settings: Settings, database: Database, database_url: str, session: AsyncSession, fake_llm: FakeLLMServer
) -> None:
    down = settings.model_copy(
        update={"embedding_provider": "openai", "openai_base_url": "http://127.0.0.1:9/v1"}
    )
    outage = build_test_resources(down, database, database_url)
    async with asgi_client(create_app(resources=outage)) as client:
        owner = await create_account(session, settings)
        agent_id = await new_agent(client, owner)
        posted = await client.post(
            f"/api/v1/agents/{agent_id}/documents",
            json={"title": "Handbook", "content": handbook_markdown(), "format": "md"},
            headers=owner.headers,
        )
        assert posted.status_code == 201
        assert await ingest(outage) == ["ready"]  # stored for full-text search, vectors later
        found = await client.post(
            f"/api/v1/agents/{agent_id}/knowledge/search",
            json={"query": "Do you accept PayPal?"},
            headers=owner.headers,
        )
        assert found.status_code == 200 and found.json()["items"][0]["heading"].endswith("Payment methods")
    await outage.close()
    chunks = (await session.scalars(select(Chunk).where(Chunk.agent_id == agent_id))).all()
    assert chunks and all(c.embedding is None for c in chunks)

    working = build_test_resources(
        settings.model_copy(update={"embedding_provider": "openai"}), database, database_url
    )
    try:
        assert isinstance(working.jobs, RecordingJobQueue)
        done = await working.jobs.execute(
            "knowledge.reembed", {"timestamp": 0}, job_id=0, attempt=0, resources=working
        )
        assert done == len(SECTIONS)
        calls = [r for r in fake_llm.requests if r.path == "/v1/embeddings"]
        assert calls and all(
            r.body["dimensions"] == 384 and r.body["model"] == "text-embedding-3-small" for r in calls
        )
        session.expire_all()
        chunks = (await session.scalars(select(Chunk).where(Chunk.agent_id == agent_id))).all()
        assert all(c.embedding_model == "openai/text-embedding-3-small@384" for c in chunks)
        async with asgi_client(create_app(resources=working)) as client:
            hybrid = await client.post(
                f"/api/v1/agents/{agent_id}/knowledge/search",
                json={"query": "Do you accept PayPal?"},
                headers=owner.headers,
            )
        assert hybrid.json()["items"][0]["heading"].endswith("Payment methods")
        assert (
            len([r for r in fake_llm.requests if r.path == "/v1/embeddings"]) == len(calls) + 1
        )  # the question
    finally:
        await working.close()


async def test_answers_use_and_cite_the_agents_documents(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    resources: Resources,
    fake_llm: FakeLLMServer,
) -> None:
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Kettle help", "model": "openai/gpt-4o-mini", "tools": ["check_balance"]},
        headers=owner.headers,
    )
    agent_id = created.json()["id"]
    plain = await client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert plain.status_code == 200
    offered = [t["function"]["name"] for t in fake_llm.requests[-1].body.get("tools", [])]
    assert offered == ["check_balance"]  # no documents: no knowledge tool, no passages

    await client.post(
        f"/api/v1/agents/{agent_id}/documents",
        json={"title": "Kettle Co. handbook", "content": handbook_markdown(), "format": "md"},
        headers=owner.headers,
    )
    await ingest(resources)
    fake_llm.script(
        ScriptedReply(tool_calls=[tool_call("search_knowledge", {"query": "gift card validity"})]),
        ScriptedReply(tool_calls=[tool_call("check_balance", {}, "call_2")]),
        ScriptedReply(content="Refunds within 30 days [Kettle Co. handbook]."),
    )
    answered = await client.post(
        f"/api/v1/agents/{agent_id}/chat",
        json={"message": "How many days do I have to ask for a refund?"},
        headers=owner.headers,
    )
    assert answered.status_code == 200, answered.text
    first_call = fake_llm.requests[-3].body
    system = first_call["messages"][0]["content"]
    assert "From [Kettle Co. handbook]" in system and "full refund within 30 days" in system
    assert "cite its document title" in system
    assert {t["function"]["name"] for t in first_call["tools"]} == {"check_balance", "search_knowledge"}
    tool_results = [m["content"] for m in fake_llm.requests[-1].body["messages"] if m["role"] == "tool"]
    assert "three years" in tool_results[0]  # the gift card passage, found by the tool
    assert "Free plan" in tool_results[1] and "$0.00 of prepaid credits" in tool_results[1]


async def test_usage_counts_documents_and_storage(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent_id = await new_agent(client, owner)
    for n in range(3):
        await client.post(
            f"/api/v1/agents/{agent_id}/documents",
            json={"title": f"d{n}", "content": "x" * 1000 + str(n)},
            headers=owner.headers,
        )
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    assert usage["documents"] == 3 and usage["documents_per_agent"] == {agent_id: 3}
    assert usage["storage_mb"] == round(3 * 1001 / (1024 * 1024), 3)


async def test_the_same_file_uploaded_at_once_ten_times_is_one_document(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    agent_id = await new_agent(live.client, owner)

    async def upload() -> int:
        response = await live.client.post(
            f"/api/v1/agents/{agent_id}/documents",
            json={"title": "Same", "content": "identical content"},
            headers=owner.headers,
        )
        return response.status_code

    statuses = await asyncio.gather(*(upload() for _ in range(10)))
    assert sorted(statuses) == [200] * 9 + [201]
    documents = (await live.client.get(f"/api/v1/agents/{agent_id}/documents", headers=owner.headers)).json()
    assert len(documents["items"]) == 1


async def test_a_document_stored_without_its_job_is_ingested_later(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    agent_id = await new_agent(client, owner)
    posted = await client.post(
        f"/api/v1/agents/{agent_id}/documents",
        json={"title": "Lost", "content": "queued nowhere"},
        headers=owner.headers,
    )
    assert isinstance(resources.jobs, RecordingJobQueue)
    resources.jobs.deferred.clear()  # the process died before queueing the ingestion
    await session.execute(
        update(Document)
        .where(Document.id == posted.json()["id"])
        .values(created_at=func.now() - timedelta(minutes=5))
    )
    await session.commit()
    swept = await resources.jobs.execute(
        "knowledge.requeue_lost_ingestions", {"timestamp": 0}, job_id=0, attempt=0, resources=resources
    )
    assert swept == 1 and await ingest(resources) == ["ready"]


def bomb_pdf(inflated_bytes: int) -> bytes:
    """A small PDF whose one page's content stream inflates to ``inflated_bytes``."""
    content = zlib.compress(b" " * inflated_bytes, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    out.seek(0, io.SEEK_END)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def test_a_decompression_bomb_pdf_is_refused_with_a_reason() -> None:
    bomb = bomb_pdf(200_000_000)
    assert len(bomb) < 300_000  # 200 MB of content in a 0.2 MB file
    with pytest.raises(UnreadableDocument, match="decompression bomb"):
        parse(bomb, "pdf")
