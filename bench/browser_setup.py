"""What the browser benchmarks share: a small site on loopback, a migrated embedded PostgreSQL with one org
and agent, and the browser toolset of a turn (``AgentBrowser``) on a pool, as a turn builds it."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hutch.accounts.models import Org
from hutch.agents.models import Agent, AgentStatus, Audience, Placement
from hutch.browser.agent_browser import AgentBrowser, BrowserScope, StoredScreenshots
from hutch.browser.leases import BrowserLeases
from hutch.browser.pool import BrowserPool
from hutch.browser.screenshots import FileScreenshots
from hutch.db import migrations
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.engine import Database
from hutch.settings import Settings

ORG, AGENT = "org_bench", "agt_bench"


class _Pages(BaseHTTPRequestHandler):
    """``/p/<n>``: a page with a heading, some text, a form and a link to the next page."""

    def do_GET(self) -> None:
        n = int(self.path.rsplit("/", 1)[-1] or 0) if self.path.startswith("/p/") else 0
        body = (
            f"<!doctype html><title>Page {n}</title><h1>Page {n}</h1>"
            + "<p>Some text of the page, as a shop or a form would have.</p>" * 20
            + "<form><label>Search <input name=q></label><button>Go</button></form>"
            + f"<a href='/p/{n + 1}'>Next</a>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Bench:
    site: str
    pool: BrowserPool
    database: Database
    store: FileScreenshots

    def browser(self, key: str) -> AgentBrowser:
        """The browser a conversation's turn would get (one per ``key``)."""
        scope = BrowserScope(org_id=ORG, agent_id=AGENT, reference=key)
        keeper = StoredScreenshots(self.store, self.database, None)
        # As a plan with a limit of browsers at once has it: each action renews the session's lease.
        leases = BrowserLeases(self.database, idle_seconds=300)
        return AgentBrowser(self.pool, keeper, scope, 100, 20 * 1024 * 1024, leases=leases)


@asynccontextmanager
async def bench_setup(pool_size: int = 8) -> AsyncIterator[Bench]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        url = postgres.start()
        try:
            migrations.upgrade(url)
            database = Database(url)
            async with database.sessionmaker() as session:
                session.add(Org(id=ORG, name="Bench", plan="free"))
                await session.flush()
                session.add(
                    Agent(
                        id=AGENT,
                        org_id=ORG,
                        slug="bench",
                        name="Bench",
                        role="assistant",
                        system_prompt="",
                        model="openai/gpt-4o-mini",
                        temperature=Decimal("0.2"),
                        max_tokens=256,
                        audience=Audience.PUBLIC,
                        placement=Placement.SHARED,
                        tools=["browser"],
                        status=AgentStatus.ACTIVE,
                    )
                )
                await session.commit()
            settings = Settings(
                _env_file=None,
                egress_allow=["127.0.0.1"],
                browser_pool_size=pool_size,
                data_dir=Path(tmp) / "data",
            )
            pool = BrowserPool(settings)
            store = FileScreenshots(Path(tmp) / "data" / "screenshots")
            try:
                yield Bench(f"http://127.0.0.1:{server.server_address[1]}", pool, database, store)
            finally:
                await pool.close()
                await database.engine.dispose()
        finally:
            server.shutdown()
            postgres.stop()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
