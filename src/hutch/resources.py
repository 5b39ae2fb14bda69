"""What one Hutch process builds at start-up from settings and hands out through dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from hutch.accounts.oidc_gateway import SsoProviders
from hutch.billing.plans import PlanCatalog, load_plans
from hutch.billing.stripe_gateway import StripeGateway
from hutch.botfactory.gateway import TelethonClients
from hutch.browser.pool import BrowserPool
from hutch.browser.screenshots import build_screenshot_store
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.voice.gateway import LiveKitRooms, VoiceNotConfigured, livekit_config
from hutch.channels.whatsapp.gateway import WhatsAppGateway, whatsapp_configured
from hutch.conversations.live import MessageWatch
from hutch.core.brand import Brand, load_brand
from hutch.core.metrics import Metrics
from hutch.core.ratelimit import RateLimiter, build_rate_limiter
from hutch.core.security import SecretBox
from hutch.db.engine import Database
from hutch.db.jobs import JobOutbox, WorkerResources
from hutch.engine.catalog import Catalog, load_catalog
from hutch.engine.gateway import LLMGateway
from hutch.engine.transcription import build_transcription
from hutch.integrations.gateway import McpClients
from hutch.knowledge.embeddings import build_embedder
from hutch.notifications.gateway import build_email_gateway
from hutch.runtimes.drivers.process import ProcessDriver
from hutch.settings import Settings
from hutch.tasks.manager import Team
from hutch.worker import JobQueue


@dataclass
class Resources(WorkerResources):
    """Everything an API process uses: what jobs use, plus the queue, the limiter and the schema heads."""

    jobs: JobQueue
    migration_heads: frozenset[str]
    message_watch: MessageWatch  # new messages for the inbox's open event streams
    sso: SsoProviders  # the single sign-on providers configured (Google, an OpenID Connect issuer)

    @property
    def worker_resources(self) -> WorkerResources:
        return self


def build_worker_resources(
    settings: Settings,
    database: Database,
    metrics: Metrics,
    catalog: Catalog | None = None,
    plans: PlanCatalog | None = None,
    brand: Brand | None = None,
    rate_limiter: RateLimiter | None = None,
) -> WorkerResources:
    """The gateways and helpers every process needs, built once from settings. The rate limiter counts in
    the store every process of the deployment uses (``build_rate_limiter``); an API process passes its own,
    with a pool of its own."""
    catalog = catalog or load_catalog(settings)
    plans = plans or load_plans(settings)
    brand = brand or load_brand(settings)
    # The store every process counts in; a worker hits it less often than an API process: a smaller pool.
    limiter = rate_limiter or build_rate_limiter(settings, database.engine, pool_size=2, max_overflow=3)
    return WorkerResources(
        settings=settings,
        database=database,
        metrics=metrics,
        secret_box=SecretBox([k.get_secret_value() for k in settings.encryption_keys]),
        email=build_email_gateway(settings, brand),
        catalog=catalog,
        llm=LLMGateway(settings, catalog),
        plans=plans,
        stripe=StripeGateway(settings, plans) if settings.stripe_secret_key is not None else None,
        embedder=build_embedder(settings),
        runtime_drivers={"process": ProcessDriver()},
        creator_clients=TelethonClients(),
        telegram=TelegramGateway(settings.telegram_api_base),
        whatsapp=WhatsAppGateway(settings) if whatsapp_configured(settings) else None,
        livekit=_livekit(settings),
        team=Team,
        mcp=McpClients(),
        transcription=build_transcription(settings),
        jobs=JobOutbox(),
        browsers=BrowserPool(settings),
        screenshots=build_screenshot_store(settings),
        brand=brand,
        rate_limiter=limiter,
    )


def _livekit(settings: Settings) -> LiveKitRooms | None:
    try:
        return LiveKitRooms(livekit_config(settings))
    except VoiceNotConfigured:
        return None


def build_resources(
    shared: WorkerResources, jobs: JobQueue, rate_limiter: RateLimiter, migration_heads: frozenset[str]
) -> Resources:
    return Resources(
        settings=shared.settings,
        database=shared.database,
        metrics=shared.metrics,
        secret_box=shared.secret_box,
        email=shared.email,
        catalog=shared.catalog,
        llm=shared.llm,
        plans=shared.plans,
        stripe=shared.stripe,
        embedder=shared.embedder,
        runtime_drivers=shared.runtime_drivers,
        creator_clients=shared.creator_clients,
        telegram=shared.telegram,
        whatsapp=shared.whatsapp,
        livekit=shared.livekit,
        team=shared.team,
        mcp=shared.mcp,
        transcription=shared.transcription,
        jobs=jobs,
        browsers=shared.browsers,
        screenshots=shared.screenshots,
        rate_limiter=rate_limiter,
        migration_heads=migration_heads,
        message_watch=MessageWatch(shared.database),
        sso=SsoProviders.from_settings(shared.settings),
        brand=shared.brand,
    )
