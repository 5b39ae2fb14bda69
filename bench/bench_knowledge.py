"""Knowledge: ingestion throughput, and search latency at 10k and 100k chunks next to the raw SQL.

Ingestion: a generated 600-section Markdown handbook uploaded to a real `hutch serve` (with its worker),
timed from upload until the document is ready, with full-text only and (when the local-embeddings extra is
installed) with local embeddings.

Search: chunks of generated text with random unit vectors are bulk-loaded for one agent (among other
agents' chunks, so the filters matter), then 300 queries each go through Hutch's search code
(`search_chunks`, SQLAlchemy and asyncpg) and, for the raw time, the same SQL through psycopg alone:
full-text, vector and hybrid (the fused query the API runs). Target: hybrid p95 under 50 ms at 100k chunks.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from common import HUTCH, clean_env, free_port, print_table, process, unlimited_plans, wait_for
from hutch.db import migrations
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.engine import Database
from hutch.db.urls import libpq_conninfo
from hutch.knowledge.embeddings import LocalEmbeddings
from hutch.knowledge.models import EMBEDDING_DIMENSIONS
from hutch.knowledge.search import FTS_ONLY, HYBRID, search_chunks, vector_literal

SIZES = [10_000, 100_000]
QUERIES = 300
MODEL = "bench/random"
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "be",
    "da",
    "fi",
    "gu",
    "ho",
    "ja",
    "ke",
    "lu",
    "ma",
    "no",
    "pe",
    "qu",
    "ri",
    "so",
    "tu",
    "va",
    "we",
    "xi",
    "yo",
    "ze",
]
# A 24,000-word vocabulary used with Zipf-like frequencies, as real text is: a few words are everywhere,
# most are rare. (A small vocabulary would make every chunk match every query, which no corpus does.)
WORDS = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES][:24_000]
ZIPF_EXPONENT = 3  # word rank = N * random()^3: rank 0 is the most frequent


def zipf_word(rng: random.Random) -> str:
    return WORDS[int(len(WORDS) * rng.random() ** ZIPF_EXPONENT)]


def question(rng: random.Random) -> str:
    """Four words of middling frequency, like the content words of a real question."""
    return " ".join(WORDS[rng.randrange(200, 6000)] for _ in range(4))


def handbook(sections: int) -> str:
    rng = random.Random(1)
    parts = ["# Generated handbook"]
    for n in range(sections):
        body = " ".join(zipf_word(rng) for _ in range(120))
        parts.append(f"## Section {n}\n\n{body.capitalize()}.")
    return "\n\n".join(parts)


def ingestion_rate(url: str, provider: str, tmp: Path) -> tuple[int, float]:
    """(chunks, seconds) for one upload to a fresh `hutch serve` with this embedding provider."""
    env = clean_env(
        HUTCH_DATABASE_URL=url,
        HUTCH_DATA_DIR=str(tmp / "data"),
        HUTCH_LOG_LEVEL="WARNING",
        HUTCH_EMBEDDING_PROVIDER=provider,
        HUTCH_PLANS_FILE=str(unlimited_plans(tmp)),
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([*HUTCH, "serve", "--worker", "--port", str(port)], env):
        wait_for(f"{base}/readyz")
        with httpx.Client(base_url=base, timeout=60) as client:
            email = f"ingest-{provider}@example.com"
            signup = client.post("/api/v1/auth/signup", json={"email": email, "password": "bench password 1"})
            auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
            agent = client.post("/api/v1/agents", json={"name": f"Ingest {provider}"}, headers=auth).json()
            if provider == "local":  # load the model before the clock starts, as a running server has
                client.post(
                    f"/api/v1/agents/{agent['id']}/documents",
                    json={"title": "warm", "content": "warm up"},
                    headers=auth,
                )
                time.sleep(8)
            started = time.perf_counter()
            document = client.post(
                f"/api/v1/agents/{agent['id']}/documents",
                json={"title": "Handbook", "content": handbook(600), "format": "md"},
                headers=auth,
            ).json()
            while True:
                state = client.get(
                    f"/api/v1/agents/{agent['id']}/documents/{document['id']}", headers=auth
                ).json()
                if state["status"] in ("ready", "failed"):
                    break
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            if state["status"] != "ready":
                raise RuntimeError(f"ingestion failed: {state['error']}")
            return int(state["chunk_count"]), seconds


def load_corpus(url: str, org_id: str, agent_ids: list[str], chunks: int) -> None:
    """``chunks`` chunks spread over the agents (the first gets a quarter), indexes rebuilt after loading."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_document_chunks_embedding")
        conn.execute("DROP INDEX IF EXISTS ix_document_chunks_tsv")
        conn.execute("TRUNCATE document_chunks")
        for n, agent_id in enumerate(agent_ids):
            share = chunks // 4 if n == 0 else (chunks - chunks // 4) // (len(agent_ids) - 1)
            document_id = f"doc_bench_{n}"
            conn.execute(
                "INSERT INTO documents (id, org_id, agent_id, title, kind, size_bytes, content_hash, status, "
                "chunk_count, chunks_total, chunks_done, created_at) VALUES "
                "(%s, %s, %s, %s, 'md', 0, %s, 'ready', %s, %s, %s, now()) ON CONFLICT DO NOTHING",
                (document_id, org_id, agent_id, f"Bench {n}", f"hash{n}", share, share, share),
            )
            conn.execute(
                f"""
                INSERT INTO document_chunks (id, org_id, agent_id, document_id, position, heading, text,
                    token_count, content_hash, embedding, embedding_model, created_at)
                SELECT 'chk_' || %(n)s || '_' || g, %(org)s, %(agent)s, %(doc)s, g, 'Section ' || g,
                    (SELECT string_agg((%(words)s::text[])[1 + floor(%(nwords)s * random() ^ 3)::int], ' ')
                     FROM generate_series(1, 60) WHERE g > 0),
                    60, md5(g::text),
                    (SELECT array_agg(random() - 0.5)::vector({EMBEDDING_DIMENSIONS})
                     FROM generate_series(1, {EMBEDDING_DIMENSIONS}) WHERE g > 0),
                    %(model)s, now()
                FROM generate_series(1, %(share)s) g
                """,
                {
                    "n": n,
                    "org": org_id,
                    "agent": agent_id,
                    "doc": document_id,
                    "words": WORDS,
                    "nwords": len(WORDS),
                    "model": MODEL,
                    "share": share,
                },
            )
        conn.execute("CREATE INDEX ix_document_chunks_tsv ON document_chunks USING gin (tsv)")
        conn.execute(
            "CREATE INDEX ix_document_chunks_embedding ON document_chunks USING hnsw "
            "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        conn.execute("ANALYZE document_chunks")


# Three more agents in the org: their chunks share the indexes, and searches must filter them out.
OTHER_AGENTS = """
INSERT INTO agents (id, org_id, slug, name, role, system_prompt, model, temperature, max_tokens, audience,
    placement, tools, status, created_at, updated_at)
SELECT 'agt_bench_' || g, %s, 'bench-' || g, 'Bench ' || g, 'assistant', '', 'demo/echo', 0.7, 1024,
    'public', 'shared', ARRAY[]::varchar[], 'active', now(), now()
FROM generate_series(1, 3) g RETURNING id
"""
VECTOR_ONLY = """
SELECT c.id FROM document_chunks c
WHERE c.org_id = :org_id AND c.agent_id = :agent_id AND c.embedding_model = :model
ORDER BY c.embedding <=> CAST(:vector AS vector) LIMIT :top_k
"""


def raw_times(url: str, statement: str, params: list[dict[str, Any]]) -> list[float]:
    """Milliseconds per query through psycopg alone (the SQL's own cost plus one round trip)."""
    sql = statement
    for name in ("org_id", "agent_id", "query", "top_k", "candidates", "vector", "model"):
        sql = sql.replace(f":{name}", f"%({name})s")
    times = []
    with psycopg.connect(libpq_conninfo(url)) as conn:
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        for p in params:
            t0 = time.perf_counter()
            conn.execute(sql, p).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        conn.rollback()
    return times


async def hutch_times(url: str, params: list[dict[str, Any]], mode: str) -> list[float]:
    """Milliseconds per query through Hutch's search code."""
    database = Database(url, pool_size=2, max_overflow=0)
    times = []
    try:
        for p in params:
            async with database.sessionmaker() as session:
                t0 = time.perf_counter()
                if mode == "vector":
                    await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                    (await session.execute(text(VECTOR_ONLY), p)).all()
                else:
                    await search_chunks(
                        session,
                        org_id=p["org_id"],
                        agent_id=p["agent_id"],
                        query=p["query"],
                        top_k=p["top_k"],
                        vector=p["raw_vector"] if mode == "hybrid" else None,
                        model=MODEL if mode == "hybrid" else None,
                    )
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        await database.dispose()
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    rows_ingest: list[list[object]] = []
    rows_search: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(tmp / "pg")
        url = postgres.start()
        try:
            migrations.upgrade(url)
            providers = ["none"] + (["local"] if LocalEmbeddings.installed() else [])
            for provider in providers:
                chunks, seconds = ingestion_rate(url, provider, tmp)
                label = "full-text only" if provider == "none" else "local embeddings (all-MiniLM-L6-v2)"
                rows_ingest.append([label, chunks, seconds, chunks / seconds])

            with psycopg.connect(libpq_conninfo(url)) as conn:
                org_id, agent_id = conn.execute(
                    "SELECT org_id, id FROM agents ORDER BY created_at LIMIT 1"
                ).fetchone()  # type: ignore[misc]
                others = [row[0] for row in conn.execute(OTHER_AGENTS, (org_id,)).fetchall()]
                conn.commit()
            rng = random.Random(3)
            for size in SIZES:
                started = time.perf_counter()
                load_corpus(url, org_id, [agent_id, *others], size)
                loaded = time.perf_counter() - started
                params = []
                for _ in range(QUERIES):
                    vector = [rng.random() - 0.5 for _ in range(EMBEDDING_DIMENSIONS)]
                    params.append(
                        {
                            "org_id": org_id,
                            "agent_id": agent_id,
                            "query": question(rng),
                            "top_k": 5,
                            "candidates": 50,
                            "vector": vector_literal(vector),
                            "raw_vector": vector,
                            "model": MODEL,
                        }
                    )
                for mode, statement in (
                    ("full-text", FTS_ONLY.text),
                    ("vector", VECTOR_ONLY),
                    ("hybrid", HYBRID.text),
                ):
                    raw = raw_times(url, statement, params)
                    ours = asyncio.run(hutch_times(url, params, mode))
                    rows_search.append(
                        [f"{size:,} chunks", mode, pct(ours, 50), pct(ours, 95), pct(raw, 50), pct(raw, 95)]
                    )
                print(f"  ({size:,} chunks loaded and indexed in {loaded:.0f} s)", flush=True)
        finally:
            postgres.stop()

    print_table(
        "Ingestion of a 600-section handbook through `hutch serve` (upload to ready)",
        ["embeddings", "chunks", "seconds", "chunks/s"],
        rows_ingest,
    )
    print_table(
        f"Search for one agent among four, {QUERIES} queries each: Hutch's search code, and the same SQL "
        "through psycopg alone",
        ["corpus", "search", "Hutch p50 ms", "Hutch p95 ms", "raw SQL p50 ms", "raw SQL p95 ms"],
        rows_search,
    )
    print(f"  median of Hutch/raw p50 ratios: {statistics.median(r[2] / r[4] for r in rows_search):.2f}")  # type: ignore[operator]


if __name__ == "__main__":
    main()
