"""The job registry and the job outbox: jobs are declared by name, and queued inside the transaction that
asks for them, so a job exists if, and only if, that transaction commits.

Domains declare jobs with :func:`job` in their ``jobs.py`` (listed in ``JOB_MODULES``); the worker
(``hutch.worker``) runs them. Queueing needs only the registry and the caller's transaction, so every owner
of a transaction (request, job, CLI, voice worker) can queue jobs, with or without a worker in its process.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import procrastinate
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hutch.core.brand import Brand

if TYPE_CHECKING:
    # What jobs receive names every gateway; only as types, so this module imports no domain.
    from hutch.agents.models import Agent
    from hutch.billing.plans import PlanCatalog
    from hutch.billing.stripe_gateway import StripeGateway
    from hutch.botfactory.gateway import CreatorClients
    from hutch.browser.pool import BrowserPool
    from hutch.browser.screenshots import ScreenshotStore
    from hutch.channels.telegram.gateway import TelegramGateway
    from hutch.channels.voice.gateway import LiveKitRooms
    from hutch.channels.whatsapp.gateway import WhatsAppGateway
    from hutch.core.metrics import Metrics
    from hutch.core.ratelimit import RateLimiter
    from hutch.core.security import SecretBox
    from hutch.db.engine import Database, UnitOfWork
    from hutch.engine.catalog import Catalog
    from hutch.engine.deps import TeamActions
    from hutch.engine.gateway import LLMGateway
    from hutch.engine.transcription import TranscriptionGateway
    from hutch.integrations.gateway import McpGateway
    from hutch.knowledge.embeddings import EmbeddingProvider
    from hutch.notifications.gateway import EmailGateway
    from hutch.runtimes.drivers.base import RuntimeDriver
    from hutch.settings import Settings

# Modules whose import registers jobs; each domain adds its ``jobs`` module here.
JOB_MODULES: list[str] = [
    "hutch.core.jobs",
    "hutch.accounts.jobs",
    "hutch.notifications.jobs",
    "hutch.conversations.jobs",
    "hutch.billing.jobs",
    "hutch.knowledge.jobs",
    "hutch.channels.telegram.jobs",
    "hutch.channels.whatsapp.jobs",
    "hutch.channels.voice.jobs",
    "hutch.channels.jobs",
    "hutch.runtimes.jobs",
    "hutch.tasks.jobs",
    "hutch.admin.jobs",
    "hutch.botfactory.jobs",
    "hutch.provisioning.flow",
    "hutch.deletion.jobs",
]

DEFAULT_RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2)
HOUSEKEEPING_QUEUE = "housekeeping"
# Jobs that mostly wait on a model or a messenger (chat turns and their delivery): a worker runs many of
# them at once, since a waiting turn holds no database connection (see ``hutch.turns``).
TURNS_QUEUE = "turns"

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    retry: procrastinate.RetryStrategy | int | bool
    queue: str
    cron: str | None
    lock_per: str | None  # argument name whose value serialises jobs (a procrastinate lock)

    def lock_for(self, kwargs: dict[str, Any]) -> str | None:
        return f"{self.name}:{kwargs[self.lock_per]}" if self.lock_per is not None else None


@dataclass
class JobRegistry:
    specs: dict[str, JobSpec] = field(default_factory=dict)

    def job(
        self,
        name: str,
        *,
        retry: procrastinate.RetryStrategy | int | bool = DEFAULT_RETRY,
        queue: str = "default",
        cron: str | None = None,
        lock_per: str | None = None,
    ) -> Callable[[JobFunction], JobFunction]:
        def register(function: JobFunction) -> JobFunction:
            if name in self.specs and self.specs[name].function is not function:
                raise ValueError(f"job {name!r} is registered twice")
            self.specs[name] = JobSpec(name, function, retry, queue, cron, lock_per)
            return function

        return register

    def spec(self, name: str) -> JobSpec:
        if name not in self.specs:
            load_job_modules()
        spec = self.specs.get(name)
        if spec is None:
            raise KeyError(f"unknown job {name!r}")
        return spec


registry = JobRegistry()
job = registry.job


def load_job_modules() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)


# procrastinate's own deferral function, called in SQL (priority 0, no queueing lock, run now).
_DEFER = (
    "procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, :lock, NULL, CAST(:args AS jsonb), NULL)"
    "::procrastinate_job_to_defer_v1])"
)
_DEFER_WITHIN = text(f"SELECT {_DEFER}")
_AFTER: dict[str, TextClause] = {}  # statements built once per writes' SQL


def after_writes(writes: str, then: str) -> TextClause:
    """``then`` once per row that ``writes`` (a data-modifying statement with ``RETURNING``) returns, as one
    statement. Both are Hutch's own SQL, never input: values go in bound parameters."""
    key = f"{writes}\n{then}"
    if key not in _AFTER:
        _AFTER[key] = text(f"WITH written AS ({writes}) SELECT {then} FROM written")  # noqa: S608
    return _AFTER[key]


class JobOutbox:
    """Queues jobs inside the caller's transaction: one statement on the connection already in use."""

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
        """Run ``writes`` (SQL with ``RETURNING``) and, in the same statement, queue the job when they
        returned a row (an event stored, not a replay); whether they did. Atomic without a transaction
        around it: a webhook's event and its job cost one round trip."""
        job = _job_params(task_name, lock, kwargs)
        return (await db.execute(after_writes(writes, _DEFER), params | job)).first() is not None

    async def defer_within(
        self,
        session: AsyncSession | AsyncConnection,
        task_name: str,
        *,
        lock: str | None = None,
        **kwargs: Any,
    ) -> None:
        await session.execute(_DEFER_WITHIN, _job_params(task_name, lock, kwargs))


def _job_params(task_name: str, lock: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    spec = registry.spec(task_name)
    return {
        "queue": spec.queue,
        "task": task_name,
        "lock": lock if lock is not None else spec.lock_for(kwargs),
        "args": json.dumps(kwargs),
    }


TeamOf = Callable[["UnitOfWork", "WorkerResources", "Agent"], "TeamActions"]


@dataclass
class JobContext:
    """What a job function receives besides its arguments."""

    uow: UnitOfWork
    resources: WorkerResources
    job_id: int
    attempt: int
    queue: JobOutbox

    @property
    def settings(self) -> Settings:
        return self.resources.settings


@dataclass
class WorkerResources:
    """What jobs may use: built once per process from settings (gateways to outside systems included)."""

    settings: Settings
    database: Database
    metrics: Metrics
    secret_box: SecretBox
    email: EmailGateway
    catalog: Catalog
    llm: LLMGateway
    plans: PlanCatalog
    stripe: StripeGateway | None  # None when HUTCH_STRIPE_SECRET_KEY is not set
    embedder: EmbeddingProvider | None  # None: knowledge search is full-text only
    runtime_drivers: dict[str, RuntimeDriver]  # by name; drivers keep state (the process driver's children)
    creator_clients: CreatorClients  # the bot factory's Telegram accounts
    telegram: TelegramGateway
    whatsapp: WhatsAppGateway | None  # None when Twilio's WhatsApp settings are not set
    livekit: LiveKitRooms | None  # None when HUTCH_LIVEKIT_* are not set
    team: TeamOf  # a manager agent's team (the tasks domain's), for the manager's tools in a turn
    mcp: McpGateway  # the MCP client, with the sessions it holds open to org's servers
    transcription: TranscriptionGateway | None  # None when HUTCH_TRANSCRIPTION_BASE_URL is not set
    jobs: JobOutbox  # queues jobs inside a unit of work's transaction
    browsers: BrowserPool  # the browser agents drive: Chromium, started when first needed
    screenshots: ScreenshotStore  # where the browser's screenshots are kept
    brand: Brand = field(default_factory=Brand, kw_only=True)  # the operator's product name, sender, colour
    # The counters of rates and per-person limits: the same store (PostgreSQL or Redis) in every process.
    rate_limiter: RateLimiter = field(kw_only=True)

    async def close(self) -> None:
        await self.llm.close()
        await self.telegram.close()
        await self.rate_limiter.aclose()
        await self.browsers.close()
        await self.mcp.close()
        if self.stripe is not None:
            await self.stripe.close()
        if self.embedder is not None:
            await self.embedder.close()
        if self.whatsapp is not None:
            await self.whatsapp.close()
        if self.livekit is not None:
            await self.livekit.close()
        if self.transcription is not None:
            await self.transcription.close()
