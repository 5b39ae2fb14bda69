"""Test infrastructure: one PostgreSQL for the run, one database per run, a rolled-back transaction per test.

By default the embedded PostgreSQL is started in a temporary folder. With ``HUTCH_TEST_DATABASE_URL`` the
suite runs on that server instead (it needs pgvector 0.5+), in a database created for this run only and
dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from hutch.app import create_app
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.core.metrics import Metrics
from hutch.core.ratelimit import PostgresRateLimiter, RateLimiter
from hutch.db import migrations
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.engine import Database, create_engine
from hutch.db.jobs import WorkerResources, after_writes, registry
from hutch.db.urls import libpq_conninfo
from hutch.resources import Resources, build_resources, build_worker_resources
from hutch.settings import Environment, Settings
from hutch.worker import JobQueue
from tests.clock import TEST_CLOCK
from tests.fakes.anthropic import FakeAnthropicServer
from tests.fakes.llm import FakeLLMServer
from tests.fakes.smtp import SmtpServer
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.telegram import FakeTelegramServer
from tests.fakes.transcription import FakeTranscriptionServer

pytest_plugins = ["tests.log_scan"]  # the whole suite's logs are searched for secrets

TEST_SECRET_KEY = "test-secret-key-" + "x" * 32


@contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements ``engine`` runs inside the block."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


class PostgresServer:
    """Where this run's databases live: an admin URL and a way to make and drop databases."""

    def __init__(self, admin_url: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded
        self.created: list[str] = []

    def url_for(self, database: str) -> str:
        if self.embedded is not None:
            return self.embedded.url_for(database)
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def create_database(self, prefix: str = "hutch_test", template: str | None = None) -> str:
        """A new database, empty or copied from ``template`` (a database nobody is connected to)."""
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(libpq_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.created.append(name)
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with psycopg.connect(libpq_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(str(name))

    def drop_all(self) -> None:
        with psycopg.connect(libpq_conninfo(self.admin_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _clear_of_rate_limit_window_ends() -> None:
    TEST_CLOCK.clear_of_window_end()  # see tests/clock.py


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    external = os.environ.get("HUTCH_TEST_DATABASE_URL")
    if external:
        server = PostgresServer(external, None)
        yield server
        server.drop_all()
        return
    with tempfile.TemporaryDirectory(prefix="hutch-test-pg-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach its data dir
        embedded = EmbeddedPostgres(Path(tmp))
        admin_url = embedded.start(database="postgres")
        server = PostgresServer(admin_url, embedded)
        try:
            yield server
        finally:
            server.drop_all()
            embedded.stop()


@pytest.fixture(scope="session")
def migrated_template(postgres: PostgresServer) -> str:
    """The name of a database built by running the migrations, copied for every database tests use."""
    url = postgres.create_database(prefix="hutch_template")
    migrations.upgrade(url)
    return str(make_url(url).database)


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer, migrated_template: str) -> str:
    """This run's database; each test works in a transaction on it that is rolled back."""
    return postgres.create_database(template=migrated_template)


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return Fernet.generate_key().decode()


TEST_PLANS = Path(__file__).with_name("billing") / "plans.toml"


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": Environment.TEST,
        "database_url": SecretStr(database_url),
        "data_dir": data_dir,
        "secret_key": SecretStr(TEST_SECRET_KEY),
        "encryption_keys": [SecretStr(Fernet.generate_key().decode())],
        "worker_stalled_timeout": 2.0,
        "worker_heartbeat_interval": 0.5,
        "plans_file": TEST_PLANS,
        "embedding_provider": "none",  # knowledge tests choose theirs
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> SmtpServer:
    """The real local SMTP server every test deployment sends to, emptied for this test."""
    smtp_server.reset()
    return smtp_server


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp_server: SmtpServer,
    fake_llm_server: FakeLLMServer,
    fake_anthropic_server: FakeAnthropicServer,
) -> Settings:
    """A deployment whose outside services are the local fakes: SMTP, OpenAI-compatible and Anthropic LLMs."""
    return make_settings(
        database_url,
        tmp_path_factory.mktemp("data"),
        smtp_url=SecretStr(smtp_server.url),
        public_url="https://hutch.example",
        openai_api_key=SecretStr("sk-test-platform-key"),
        openai_base_url=fake_llm_server.api_base,
        anthropic_api_key=SecretStr("sk-ant-test"),
        anthropic_base_url=fake_anthropic_server.base_url,
        llm_max_retries=0,
        provider_urls_allow_private=True,  # the fakes listen on loopback
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test: nothing leaks."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()
            while _telegram_gateways:
                await _telegram_gateways.pop().close()


@pytest.fixture
def database(engine: AsyncEngine, connection: AsyncConnection) -> Database:
    # Commits inside the app become savepoint releases inside the test's transaction.
    sessionmaker = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    return Database(engine=engine, sessionmaker=sessionmaker)


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessionmaker() as session:
        yield session


class RecordingJobQueue(JobQueue):
    """Records deferred jobs instead of queueing them; ``run_pending`` runs them in the test's transaction."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        super().__init__(settings, database_url)
        self.deferred: list[tuple[str, dict[str, Any]]] = []
        self.locks: list[str | None] = []  # the queue lock of each job deferred within a transaction
        self.worker_resources: WorkerResources | None = None

    async def defer(self, task_name: str, *, lock: str | None = None, **kwargs: Any) -> int:
        self.deferred.append((task_name, kwargs))
        return len(self.deferred)

    async def defer_within(
        self,
        session: AsyncSession | AsyncConnection,
        task_name: str,
        *,
        lock: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.deferred.append((task_name, kwargs))
        self.locks.append(lock if lock is not None else registry.spec(task_name).lock_for(kwargs))

    async def defer_after(
        self,
        db: AsyncSession | AsyncConnection,
        writes: str,
        params: dict[str, Any],
        task_name: str,
        *,
        lock: str | None = None,
        **kwargs: Any,
    ) -> bool:
        """The writes run (in one statement, as in production); the job is recorded when they wrote a row."""
        if (await db.execute(after_writes(writes, "1"), params)).first() is None:
            return False
        await self.defer_within(db, task_name, lock=lock, **kwargs)
        return True

    async def run_pending(self) -> list[Any]:
        assert self.worker_resources is not None
        results = []
        while self.deferred:
            task_name, kwargs = self.deferred.pop(0)
            results.append(
                await self.execute(task_name, kwargs, job_id=0, attempt=0, resources=self.worker_resources)
            )
        return results


def build_test_resources(
    settings: Settings, database: Database, database_url: str, rate_limiter: RateLimiter | None = None
) -> Resources:
    """Hutch's resources on ``database``; the rate limiter borrows its connections unless ``rate_limiter``
    (a pool of its own, as the app has, where requests run concurrently)."""
    jobs = RecordingJobQueue(settings, database_url)
    limiter = rate_limiter or PostgresRateLimiter(database.engine, clock=TEST_CLOCK)
    shared = build_worker_resources(settings, database, Metrics(), rate_limiter=limiter)
    built = build_resources(shared, jobs, limiter, frozenset(migrations.head_revisions()))
    jobs.worker_resources = built.worker_resources
    _telegram_gateways.append(built.telegram)
    return built


# The Telegram gateways a test built (they hold an HTTP session), closed with its database connection.
_telegram_gateways: list[TelegramGateway] = []


@pytest.fixture
async def resources(settings: Settings, database: Database, database_url: str) -> AsyncIterator[Resources]:
    built = build_test_resources(settings, database, database_url)
    gateway = built.llm
    yield built
    for llm in {gateway, built.llm}:  # a test may have swapped in a gateway of its own
        await llm.close()


@pytest.fixture
def jobs(resources: Resources) -> RecordingJobQueue:
    """The jobs requests deferred; ``await jobs.run_pending()`` runs them as a worker would."""
    assert isinstance(resources.jobs, RecordingJobQueue)
    return resources.jobs


@pytest.fixture
def app(resources: Resources) -> FastAPI:
    return create_app(resources=resources)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def asgi_client(app: FastAPI) -> AsyncClient:
    return AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://testserver"
    )


@dataclass
class LiveDeployment:
    """Hutch on a database of its own where every request really commits: for races and concurrency."""

    resources: Resources
    client: AsyncClient
    session: AsyncSession
    app: FastAPI

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs


@asynccontextmanager
async def live_deployment(
    postgres: PostgresServer, migrated_template: str, settings: Settings
) -> AsyncIterator[LiveDeployment]:
    """Hutch on a database of its own, dropped afterwards."""
    url = postgres.create_database(prefix="hutch_live", template=migrated_template)
    database = Database(url, pool_size=20, max_overflow=20)  # 40: far below max_connections
    live_settings = settings.model_copy(update={"database_url": SecretStr(url)})
    # As in the app, the limiter has a pool of its own: a request holding a connection never waits for a
    # second one from the pool its concurrent requests exhaust.
    limiter = PostgresRateLimiter.with_own_pool(database.engine.url, clock=TEST_CLOCK)
    resources = build_test_resources(live_settings, database, url, limiter)
    try:
        app = create_app(resources=resources)
        async with asgi_client(app) as client, database.sessionmaker() as session:
            yield LiveDeployment(resources, client, session, app)
    finally:
        await resources.llm.close()
        await limiter.aclose()
        await database.dispose()
        postgres.drop_database(url)


@pytest.fixture
async def live(
    postgres: PostgresServer, migrated_template: str, settings: Settings
) -> AsyncIterator[LiveDeployment]:
    async with live_deployment(postgres, migrated_template, settings) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropicServer]:
    server = FakeAnthropicServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropicServer) -> FakeAnthropicServer:
    """The fake Anthropic Messages API, with its script and request log cleared for this test."""
    fake_anthropic_server.reset()
    return fake_anthropic_server


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLMServer) -> FakeLLMServer:
    """The fake OpenAI-compatible server, with its script and request log cleared for this test."""
    fake_llm_server.reset()
    return fake_llm_server


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    server = FakeStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transcription_server() -> Iterator[FakeTranscriptionServer]:
    server = FakeTranscriptionServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_transcription(transcription_server: FakeTranscriptionServer) -> FakeTranscriptionServer:
    """The fake ``/audio/transcriptions`` endpoint, with its script and request log cleared for this test."""
    transcription_server.reset()
    return transcription_server


@pytest.fixture(scope="session")
def telegram_server() -> Iterator[FakeTelegramServer]:
    server = FakeTelegramServer()
    server.start()
    yield server
    server.stop()
