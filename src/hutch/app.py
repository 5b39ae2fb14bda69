"""The FastAPI application factory: resources, routers, middleware and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from hutch import __version__, health
from hutch.accounts import org_router
from hutch.accounts import router as accounts_router
from hutch.admin import router as admin_router
from hutch.admin.webhook_watch import WebhookWatch
from hutch.agents import avatar_router
from hutch.agents import router as agents_router
from hutch.apikeys import router as apikeys_router
from hutch.audit import router as audit_router
from hutch.billing import admin_router as billing_admin_router
from hutch.billing import router as billing_router
from hutch.billing import webhook_router as billing_webhook_router
from hutch.billing.plans import PlanCatalog, PlanFileError, load_plans
from hutch.billing.service import mirror_plans
from hutch.bootstrap import settle_garbage_collector
from hutch.botfactory import router as botfactory_router
from hutch.browser import router as browser_router
from hutch.channels import links_router
from hutch.channels import router as channels_router
from hutch.channels.anthropic_api import router as anthropic_router
from hutch.channels.openai_api import responses_router
from hutch.channels.openai_api import router as openai_router
from hutch.channels.telegram import router as telegram_router
from hutch.channels.telegram.platform import SETUP_JOB as PLATFORM_SETUP_JOB
from hutch.channels.telegram.platform import platform_token
from hutch.channels.voice import router as voice_router
from hutch.channels.webchat import router as webchat_router
from hutch.channels.webchat.cors import DashboardCORSMiddleware, WidgetCORSMiddleware
from hutch.channels.whatsapp import router as whatsapp_router
from hutch.conversations import inbox_router, memories_router
from hutch.conversations import router as conversations_router
from hutch.core.brand import Brand, BrandError, load_brand
from hutch.core.errors import StartupError, install_error_handlers
from hutch.core.logging import configure_logging
from hutch.core.metrics import Metrics
from hutch.core.ratelimit import build_rate_limiter, check_redis, configured_redis_url
from hutch.db.embedded import EmbeddedPostgres
from hutch.db.engine import Database
from hutch.db.migrations import head_revisions
from hutch.deletion import router as deletion_router
from hutch.engine.catalog import Catalog, CatalogError, load_catalog
from hutch.http.middleware import RequestMiddleware
from hutch.integrations import router as integrations_router
from hutch.knowledge import router as knowledge_router
from hutch.knowledge.jobs import REEMBED_JOB
from hutch.notifications import router as notifications_router
from hutch.resources import Resources, build_resources, build_worker_resources
from hutch.runtimes import admin_router as runtimes_admin_router
from hutch.runtimes import router as runtimes_router
from hutch.settings import Settings, ensure_generated_secrets, load_settings
from hutch.tasks import router as tasks_router
from hutch.turns import router as turns_router
from hutch.web import (
    account_pages,
    admin_pages,
    agent_pages,
    agent_tabs,
    app_pages,
    inbox_pages,
    key_pages,
    org_pages,
    public_pages,
    settings_pages,
    sso_pages,
    task_pages,
    tool_pages,
)
from hutch.web.languages import LanguageMiddleware, install_translations
from hutch.web.templating import static_files, templates
from hutch.worker import JobQueue, wait_cancelled

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = False,
    worker_concurrency: int | None = None,
    resources: Resources | None = None,
) -> FastAPI:
    """Build the app. The database must be migrated already (``hutch serve`` does it before this).

    When ``settings.database_url`` is unset (e.g. ``uvicorn --factory hutch.app:create_app``), the app
    starts and owns the embedded PostgreSQL itself. Tests pass ready-made ``resources`` instead.
    """
    if resources is not None:
        settings = resources.settings
    if settings is None:
        settings = load_settings()
        configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    metrics = resources.metrics if resources is not None else Metrics()
    redis_url = configured_redis_url(settings)
    catalog: Catalog | None = None
    plans: PlanCatalog | None = None
    brand: Brand = resources.brand if resources is not None else Brand()
    if resources is None:
        # Checked here, before uvicorn runs, so `hutch serve` can say what is wrong in one line.
        if redis_url is not None:
            check_redis(redis_url)
        try:
            catalog = load_catalog(settings)
        except CatalogError as exc:
            raise StartupError(str(exc)) from None
        try:
            plans = load_plans(settings)
        except PlanFileError as exc:
            raise StartupError(str(exc)) from None
        try:
            brand = load_brand(settings)
        except BrandError as exc:
            raise StartupError(str(exc)) from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal settings
        assert settings is not None
        if resources is not None:
            app.state.resources = resources
            yield
            return
        embedded: EmbeddedPostgres | None = None
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.resolved_data_dir)
            url = await asyncio.to_thread(embedded.start)
            settings = ensure_generated_secrets(settings)
        else:
            url = settings.database_url.get_secret_value()
        database = Database(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
        jobs = JobQueue(settings, url)
        await jobs.open()
        rate_limiter = build_rate_limiter(settings, database.engine)
        shared = build_worker_resources(settings, database, metrics, catalog, plans, brand, rate_limiter)
        await mirror_plans(database, shared.plans)
        built = build_resources(shared, jobs, rate_limiter, frozenset(head_revisions()))
        app.state.resources = built
        if built.embedder is not None:
            # Vectors missing or made by another provider are remade now rather than at the next
            # periodic run; the job takes rows with SKIP LOCKED, so several processes doing this is fine.
            await jobs.defer(REEMBED_JOB, lock=REEMBED_JOB, timestamp=0)
        if platform_token(settings) is not None:
            await jobs.defer(PLATFORM_SETUP_JOB, lock=PLATFORM_SETUP_JOB)  # webhook and commands, retried
        worker_task: asyncio.Task[None] | None = None
        if run_worker:
            worker_task = asyncio.create_task(
                jobs.run_worker(
                    built.worker_resources,
                    concurrency=worker_concurrency or settings.worker_concurrency,
                ),
                name="hutch-worker",
            )
        settle_garbage_collector()
        try:
            yield
        finally:
            if worker_task is not None:
                await wait_cancelled(worker_task)
            await jobs.close()
            await rate_limiter.aclose()
            await built.close()
            await database.dispose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    app = FastAPI(
        title=brand.name,  # the operator's product name (brand), "Hutch" by default
        version=__version__,
        description=f"The {brand.name} API: accounts, agents, knowledge, billing, channels and runtimes.",
        lifespan=lifespan,
    )
    if resources is not None:
        app.state.resources = resources  # usable without running the lifespan (test clients)
    install_error_handlers(app)
    if settings.allowed_origins:
        app.add_middleware(
            DashboardCORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Org-Id", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(WidgetCORSMiddleware)
    app.add_middleware(WebhookWatch)
    app.add_middleware(LanguageMiddleware, settings=settings)  # the browser's language, for pages and errors
    install_translations(templates.env)
    # Outermost, so every answer (CORS preflights and errors included) carries the request id.
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        form_targets=stripe_origins(settings),
        image_sources=brand_image_origins(brand),
    )
    for router in (
        health.router,
        accounts_router.router,
        org_router.router,
        apikeys_router.router,
        audit_router.router,
        agents_router.router,
        integrations_router.router,
        deletion_router.router,
        avatar_router.router,
        conversations_router.router,
        turns_router.router,
        browser_router.router,
        memories_router.router,
        inbox_router.router,
        openai_router.router,
        responses_router.router,
        anthropic_router.router,
        billing_router.router,
        billing_admin_router.router,
        billing_webhook_router.router,
        knowledge_router.router,
        telegram_router.router,
        botfactory_router.router,
        botfactory_router.admin_router,
        whatsapp_router.router,
        links_router.router,
        channels_router.router,
        webchat_router.router,
        voice_router.router,
        runtimes_router.router,
        runtimes_admin_router.router,
        tasks_router.router,
        admin_router.router,
        admin_router.usage_router,
        notifications_router.router,
        account_pages.router,
        public_pages.router,
        sso_pages.router,
        app_pages.router,
        agent_pages.router,
        agent_tabs.router,
        inbox_pages.router,
        task_pages.router,
        org_pages.router,
        key_pages.router,
        tool_pages.router,
        settings_pages.router,
        admin_pages.router,
    ):
        add_routes(app, router)
    app.mount("/static", static_files(), name="static")
    if brand.assets_dir is not None:  # the brand's own logo and favicon files
        app.mount("/brand", StaticFiles(directory=brand.assets_dir), name="brand")
    return app


def stripe_origins(settings: Settings) -> str:
    """Where the dashboard's payment forms lead: Stripe's Checkout and portal (or the Stripe API stand-in)."""
    origins = ["https://checkout.stripe.com", "https://billing.stripe.com"]
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return " ".join(origins)


def brand_image_origins(brand: Brand) -> str:
    """Where the brand's logos and favicon live, when on another site: pages may show images from there."""
    links = (brand.logo_url, brand.logo_dark_url, brand.favicon_url)
    origins = {f"{p.scheme}://{p.netloc}" for p in (urlsplit(u) for u in links if u) if p.netloc}
    return " ".join(sorted(origins))


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add a router's routes to the app itself.

    ``include_router`` in current FastAPI keeps included routers as opaque branches, so ``app.routes``
    would no longer list every route; route-driven tooling (the contract check, the tenant-isolation
    matrix, the metrics' route templates) needs the flat list. Routers therefore carry their own prefix.
    """
    app.router.routes.extend(router.routes)


def create_app_with_worker() -> FastAPI:
    """Factory for ``hutch serve --reload``: the app with an in-process job worker."""
    return create_app(run_worker=True)
