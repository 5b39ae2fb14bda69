"""The ``hutch`` command: serve, worker, db, keys, version."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
import uvicorn
from cryptography.fernet import Fernet
from email_validator import EmailNotValidError, validate_email
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from hutch import __version__
from hutch.accounts.passwords import strong_password
from hutch.billing.plans import PlanCatalog, PlanFileError, load_plans
from hutch.bootstrap import (
    DatabaseHandle,
    check_port_free,
    migrate,
    open_database,
    require_current_schema,
    settle_garbage_collector,
)
from hutch.core.brand import BrandError, load_brand
from hutch.core.errors import HutchError, StartupError
from hutch.core.logging import configure_logging
from hutch.core.security import SecretBox
from hutch.db import migrations
from hutch.db.engine import Database, UnitOfWork, unit_of_work
from hutch.db.jobs import JobOutbox
from hutch.db.urls import describe
from hutch.engine.catalog import Catalog, CatalogError, load_catalog
from hutch.settings import Settings, SettingsError, export_to_environment, load_settings
from hutch.worker_process import exit_with_parent, lower_priority, worker_count, worker_processes

if TYPE_CHECKING:
    from hutch.admin.demo import DemoReport

# On a stop signal, requests in flight get this long to finish; then open streams (a dashboard's live inbox,
# a task's live view) are closed, so a restart never waits on a page someone left open.
SHUTDOWN_GRACE_SECONDS = 20

app = typer.Typer(
    name="hutch",
    help="Hutch: run an AI-assistant business on your own servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Secrets for settings.", no_args_is_help=True)
admin_app = typer.Typer(help="Operator tasks: users and platform admins.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
botfactory_app = typer.Typer(help="The bot factory's Telegram creator accounts.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(botfactory_app, name="botfactory")

console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise fail(str(exc), 2) from None
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    return settings


@contextmanager
def database_or_exit(settings: Settings, *, apply_migrations: bool) -> Iterator[DatabaseHandle]:
    """Open the database (starting the embedded one if needed) and stop it when the block ends."""
    try:
        with console.status("Starting the database…", spinner="dots"):
            handle = open_database(settings)
    except StartupError as exc:
        raise fail(str(exc)) from None
    try:
        if apply_migrations:
            with console.status("Applying migrations…", spinner="dots"):
                migrate(handle.url)
        yield handle
    except StartupError as exc:
        raise fail(str(exc)) from None
    finally:
        handle.close()


@app.command()
def version() -> None:
    """Print Hutch's version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [HUTCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [HUTCH_PORT].")] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run a job worker in this process (default: yes, except in production).",
        ),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="API processes (production, without --reload).")] = 1,
) -> None:
    """Start the API (and, by default in development, a job worker) on the configured database."""
    settings = settings_or_exit(host=host, port=port)
    run_worker = (not settings.is_production) if worker is None else worker
    try:
        check_port_free(settings.host, settings.port)
    except StartupError as exc:
        raise fail(str(exc)) from None
    if settings.uses_embedded_database:
        console.print(f"Data dir: {settings.resolved_data_dir} (embedded PostgreSQL)", highlight=False)
    with database_or_exit(settings, apply_migrations=True) as handle:
        settings = handle.settings
        _print_welcome(settings, handle, run_worker)
        if reload:
            # The reloaded child builds its own app (with a worker, so job code reloads too) from the
            # environment; the database stays ours.
            export_to_environment(settings, handle.url)
            factory = "hutch.app:create_app_with_worker" if run_worker else "hutch.app:create_app"
            uvicorn.run(
                factory,
                factory=True,
                host=settings.host,
                port=settings.port,
                reload=True,
                log_config=None,
                proxy_headers=True,
                access_log=False,
            )
            return
        with ExitStack() as running:
            if run_worker:
                # Workers run beside the API, not in its event loop: a burst of turns does not slow the
                # acknowledgement of webhooks; and one per core, since each is one Python process.
                export_to_environment(settings, handle.url)
                running.enter_context(
                    worker_processes(dict(os.environ), worker_count(settings.worker_processes))
                )
            if workers > 1:
                export_to_environment(settings, handle.url)
                uvicorn.run(
                    "hutch.app:create_app",
                    factory=True,
                    host=settings.host,
                    port=settings.port,
                    workers=workers,
                    log_config=None,
                    proxy_headers=True,
                    access_log=False,
                    timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
                )
            else:
                _serve_api(settings, handle)
    console.print("Hutch stopped.")


def _serve_api(settings: Settings, handle: DatabaseHandle) -> None:
    from hutch.app import create_app

    runtime_settings = settings.model_copy(update={"database_url": SecretStr(handle.url)})
    application = create_app(runtime_settings)
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        access_log=False,  # Hutch's own middleware logs each request, with its id
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    with stop_signals_end_quietly():
        server.run()
    if not server.started:
        raise fail("The API did not start; see the log above.")


class _StopRequested(Exception):
    pass


@contextmanager
def stop_signals_end_quietly() -> Iterator[None]:
    """Ctrl-C / SIGTERM end the block normally so clean-up (the embedded PostgreSQL) always runs.

    uvicorn shuts down gracefully on these signals, then raises them again for the previous handlers;
    the defaults would kill the process (SIGTERM) or surface a KeyboardInterrupt.
    """

    def request_stop(signum: int, frame: object) -> None:
        raise _StopRequested

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except (_StopRequested, KeyboardInterrupt):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_welcome(settings: Settings, handle: DatabaseHandle, run_worker: bool) -> None:
    base = f"http://{settings.host}:{settings.port}"
    where = "embedded PostgreSQL" if handle.embedded else describe(handle.url)
    count = worker_count(settings.worker_processes)
    workers = f"{count} beside the API" if run_worker else "separate (hutch worker)"
    lines = [
        f"[bold]Hutch {__version__}[/] is starting at [link={base}]{base}[/]",
        f"Database: {where}; job workers: {workers}",
        "",
        f"  Dashboard     {base}/",
        f"  API docs      {base}/docs",
        f"  Ready check   {base}/readyz",
        f"  Metrics       {base}/metrics",
        "",
        "The first account signed up is the platform admin.",
        "Demo data for every page and chart: .venv/bin/hutch demo (in another terminal).",
        "Press Ctrl-C to stop.",
    ]
    console.print(Panel("\n".join(lines), title="Hutch", expand=False), highlight=False)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs run at once [HUTCH_WORKER_CONCURRENCY].")
    ] = None,
    exit_with_parent_: Annotated[
        bool, typer.Option("--exit-with-parent", hidden=True, help="Stop when stdin closes (hutch serve).")
    ] = False,
) -> None:
    """Run a job worker. Start as many as needed, on as many machines: they share the queue."""
    settings = settings_or_exit()
    if exit_with_parent_:  # started by `hutch serve`, beside its API
        exit_with_parent()
        lower_priority(settings.worker_niceness)
    with database_or_exit(settings, apply_migrations=settings.uses_embedded_database) as handle:
        if not settings.uses_embedded_database:
            require_current_schema(handle.url)
        try:
            catalog = load_catalog(handle.settings)
            plans = load_plans(handle.settings)
            load_brand(handle.settings)  # a bad brand stops the start here, in one line
        except (CatalogError, PlanFileError, BrandError) as exc:
            raise fail(str(exc)) from None
        asyncio.run(_run_worker(handle, concurrency or handle.settings.worker_concurrency, catalog, plans))
    console.print("Worker stopped.")


@app.command("runtime")
def runtime(
    agent_config: Annotated[Path, typer.Option(help="The agent's runtime config (JSON), from the platform.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workspace: Annotated[
        Path | None, typer.Option(help="The agent's memory files [next to the config: workspace/].")
    ] = None,
) -> None:
    """Serve one agent on its own (a dedicated runtime): /v1/chat/completions for its platform, /healthz."""
    from hutch.runtimes.__main__ import default_workspace, serve

    if serve(agent_config, port, host, workspace or default_workspace(agent_config)):
        raise typer.Exit(1)


@app.command("voice-agent")
def voice_agent(
    mode: Annotated[str, typer.Argument(help='"start" in production, "dev" while developing.')] = "start",
) -> None:
    """Run the voice worker: joins LiveKit rooms and talks with callers through their agents.

    Needs the voice extra (pip install 'hutch[voice]'), HUTCH_LIVEKIT_* and OPENAI_API_KEY for speech."""
    from hutch.channels.voice.worker import MISSING_EXTRA, voice_agents_available

    if mode not in ("start", "dev"):
        raise fail(f'Unknown mode "{mode}"; use "start" or "dev".')
    if not voice_agents_available():
        raise fail(MISSING_EXTRA)
    settings = settings_or_exit()
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        raise fail("Set HUTCH_LIVEKIT_URL, HUTCH_LIVEKIT_API_KEY and HUTCH_LIVEKIT_API_SECRET first.")
    with database_or_exit(settings, apply_migrations=settings.uses_embedded_database) as handle:
        try:
            catalog = load_catalog(handle.settings)
            plans = load_plans(handle.settings)
            load_brand(handle.settings)  # a bad brand stops the start here, in one line
        except (CatalogError, PlanFileError, BrandError) as exc:
            raise fail(str(exc)) from None
        from hutch.channels.voice.worker import run
        from hutch.core.metrics import Metrics
        from hutch.resources import build_worker_resources

        database = Database(handle.url, pool_size=5, max_overflow=5)
        run(build_worker_resources(handle.settings, database, Metrics(), catalog, plans), mode)


async def _run_worker(handle: DatabaseHandle, concurrency: int, catalog: Catalog, plans: PlanCatalog) -> None:
    from hutch.core.metrics import Metrics
    from hutch.resources import build_worker_resources
    from hutch.worker import JobQueue

    settings = handle.settings
    # Turns hold a connection only for their short phases, so a few more than the other jobs' slots serve
    # hundreds of turns in flight.
    database = Database(handle.url, pool_size=concurrency + 6, max_overflow=10)
    jobs = JobQueue(settings, handle.url, pool_max_size=concurrency + 2)
    await jobs.open()
    try:
        resources = build_worker_resources(settings, database, Metrics(), catalog, plans)
        settle_garbage_collector()
        try:
            await jobs.run_worker(resources, concurrency=concurrency, install_signal_handlers=True)
        finally:
            await resources.close()
    finally:
        await jobs.close()
        await database.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to a revision (default: the newest)."""
    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=False) as handle:
        try:
            migrations.upgrade(handle.url, revision)
        except Exception as exc:  # noqa: BLE001 - alembic raises many kinds; report one line
            raise fail(f"Migration failed: {exc}") from None
        console.print(f"Database at {', '.join(sorted(migrations.current_revisions(handle.url)))}.")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")]) -> None:
    """Revert migrations down to a revision."""
    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=False) as handle:
        try:
            migrations.downgrade(handle.url, revision)
        except Exception as exc:  # noqa: BLE001
            raise fail(f"Downgrade failed: {exc}") from None
        current = migrations.current_revisions(handle.url)
        console.print(f"Database at {', '.join(sorted(current)) or 'base (empty)'}.")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and whether it is current."""
    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=False) as handle:
        current = migrations.current_revisions(handle.url)
        heads = migrations.head_revisions()
        state = "up to date" if current == heads else f"behind (head: {', '.join(sorted(heads))})"
        typer.echo(f"{', '.join(sorted(current)) or 'base (empty)'}: {state}")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the migration does.")],
    autogenerate: Annotated[bool, typer.Option(help="Compare models with the database.")] = True,
) -> None:
    """Create a migration file (for Hutch developers)."""
    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=False) as handle:
        migrations.revision(handle.url, message, autogenerate=autogenerate)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key for HUTCH_ENCRYPTION_KEYS (put it first; keep old keys after it)."""
    typer.echo(Fernet.generate_key().decode())


T = TypeVar("T")


def in_transaction(work: Callable[[UnitOfWork, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the configured database (migrated first); errors exit 1."""
    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=settings.uses_embedded_database) as handle:
        if not settings.uses_embedded_database:
            try:
                require_current_schema(handle.url)
            except StartupError as exc:
                raise fail(str(exc)) from None

        async def run() -> T:
            database = Database(handle.url, pool_size=1, max_overflow=0)
            try:
                async with unit_of_work(database, JobOutbox()) as uow:
                    return await work(uow, handle.settings)
            finally:
                await database.dispose()

        try:
            return asyncio.run(run())
        except HutchError as exc:
            raise fail(exc.detail) from None


def _password_or_exit(password: str | None) -> str:
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return strong_password(password)
    except ValueError as exc:
        raise fail(f"Unusable password: {exc}.", 2) from None


@admin_app.command("create-user")
def admin_create_user(
    email: Annotated[str, typer.Option(help="The user's email address.")],
    password: Annotated[
        str | None, typer.Option(help="Their password (asked for, hidden, when omitted).")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    org_name: Annotated[str | None, typer.Option(help="Name of their organisation.")] = None,
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="Make them a platform admin.")
    ] = False,
) -> None:
    """Create a user (email counted as verified) with their own organisation."""
    from hutch.accounts.admin import create_user

    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise fail(f"Invalid email: {exc}", 2) from None
    secret = _password_or_exit(password)

    async def work(uow: UnitOfWork, settings: Settings) -> str:
        box = SecretBox([k.get_secret_value() for k in settings.encryption_keys])
        user = await create_user(
            uow,
            settings,
            box,
            email=address,
            password=secret,
            name=name,
            org_name=org_name,
            platform_admin=platform_admin,
        )
        return user.id

    user_id = in_transaction(work)
    role = " (platform admin)" if platform_admin else ""
    console.print(f"Created {address.lower()}{role}: {user_id}", highlight=False)


@admin_app.command("grant")
def admin_grant(email: Annotated[str, typer.Option(help="Email of an existing user.")]) -> None:
    """Make a user a platform admin."""
    from hutch.accounts.admin import set_platform_admin

    in_transaction(lambda uow, _: set_platform_admin(uow, email, True))
    console.print(f"{email.strip().lower()} is now a platform admin.", highlight=False)


@admin_app.command("revoke")
def admin_revoke(email: Annotated[str, typer.Option(help="Email of a platform admin.")]) -> None:
    """Take platform administration away from a user (never from the last one)."""
    from hutch.accounts.admin import set_platform_admin

    in_transaction(lambda uow, _: set_platform_admin(uow, email, False))
    console.print(f"{email.strip().lower()} is no longer a platform admin.", highlight=False)


@admin_app.command("grant-credits")
def admin_grant_credits(
    org: Annotated[str, typer.Option(help="Organisation id, or the email of a user (their first org).")],
    reason: Annotated[str, typer.Option(help="Why, for the ledger and the audit log.")],
    credits_cents: Annotated[int | None, typer.Option(min=1, help="Credits to add, in cents.")] = None,
    seconds: Annotated[int | None, typer.Option(min=1, help="Time to add, in seconds.")] = None,
) -> None:
    """Add prepaid credits and/or time to an organisation (written to the ledger and the audit log)."""
    from hutch.billing.plans import load_plans
    from hutch.billing.schemas import GrantRequest
    from hutch.billing.service import BillingService, find_org

    try:
        body = GrantRequest(credits_cents=credits_cents, seconds=seconds, reason=reason)
    except ValueError:
        raise fail("Give --credits-cents, --seconds or both, and a --reason.", 2) from None

    async def work(uow: UnitOfWork, settings: Settings) -> tuple[str, str]:
        found = await find_org(uow.session, org)
        service = BillingService(uow, load_plans(settings), settings)
        await service.grant(found.id, body, None, None)
        balance = await service.balance(found.id)
        return found.id, f"{balance.credits_cents} cents of credits, {balance.seconds} seconds"

    org_id, balance = in_transaction(work)
    console.print(f"Granted to {org_id}; its balance is now {balance}.", highlight=False)


@admin_app.command("set-plan")
def admin_set_plan(
    org: Annotated[str, typer.Option(help="Organisation id, or the email of a user (their first org).")],
    plan: Annotated[str, typer.Option(help="Plan id from the plans file.")],
) -> None:
    """Put an organisation on a plan by hand (no Stripe involved)."""
    from hutch.billing.plans import load_plans
    from hutch.billing.service import BillingService, find_org

    async def work(uow: UnitOfWork, settings: Settings) -> str:
        found = await find_org(uow.session, org)
        await BillingService(uow, load_plans(settings), settings).assign_plan(found.id, plan, None, None)
        return found.id

    org_id = in_transaction(work)
    console.print(f"{org_id} is now on the {plan} plan.", highlight=False)


@admin_app.command("add-runtime-host")
def admin_add_runtime_host(
    name: Annotated[str, typer.Option(help="A name for the host, unique.")],
    address: Annotated[
        str,
        typer.Option(
            help="Docker: unix:///var/run/docker.sock, tcp://host:2375 or ssh://user@host. EC2: the region."
        ),
    ],
    capacity: Annotated[int, typer.Option(min=1, help="How many dedicated runtimes it may run.")],
    driver: Annotated[str, typer.Option(help='"docker" or "ec2".')] = "docker",
) -> None:
    """Add a host for dedicated runtimes (a Docker engine, or an EC2 region); placement fills the emptiest
    host with room."""
    if driver not in ("docker", "ec2"):
        raise fail(f'Unknown driver "{driver}"; use "docker" or "ec2".')
    from sqlalchemy import select

    from hutch.core.errors import Conflict
    from hutch.core.ids import new_id
    from hutch.runtimes.models import RuntimeHost

    async def work(uow: UnitOfWork, settings: Settings) -> str:
        if await uow.session.scalar(select(RuntimeHost.id).where(RuntimeHost.name == name)):
            raise Conflict(f"A runtime host is already named {name}.")
        host = RuntimeHost(
            id=new_id("rh"), name=name, driver=driver, address=address, max_runtimes=capacity, enabled=True
        )
        uow.session.add(host)
        await uow.session.flush()
        return host.id

    host_id = in_transaction(work)
    where = f"Docker at {address}" if driver == "docker" else f"EC2 in {address}"
    console.print(f"Runtime host {name} ({host_id}) added: {where}, up to {capacity} runtimes.")


@admin_app.command("rotate-keys")
def admin_rotate_keys() -> None:
    """Re-encrypt stored secrets with the newest HUTCH_ENCRYPTION_KEYS key (put it first, keep old ones)."""
    from hutch.admin.key_rotation import rotate_secrets

    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=settings.uses_embedded_database) as handle:
        box = SecretBox([k.get_secret_value() for k in handle.settings.encryption_keys])

        async def run() -> dict[str, int]:
            database = Database(handle.url, pool_size=1, max_overflow=0)
            try:
                report = await rotate_secrets(
                    database, box, lambda table, done: console.print(f"  {table}: {done} re-encrypted")
                )
            finally:
                await database.dispose()
            if report.unreadable:
                for table, ids in report.unreadable.items():
                    console.print(
                        f"[yellow]{table}: {len(ids)} value(s) no configured key can read "
                        f"(first: {', '.join(ids[:5])}); they were left as they are.[/]"
                    )
            return report.rotated

        rotated = asyncio.run(run())
    console.print(f"Done: {sum(rotated.values())} secret(s) now use the newest key.", highlight=False)


@botfactory_app.command("add-account")
def botfactory_add_account(
    phone: Annotated[str, typer.Option(help="The account's phone number, E.164 (+14155550100).")],
    api_id: Annotated[int, typer.Option(help="From my.telegram.org (API development tools).")],
    api_hash: Annotated[
        str | None, typer.Option(help="From my.telegram.org; asked for when left out.")
    ] = None,
    priority: Annotated[int, typer.Option(min=-100, max=100, help="Higher is used first.")] = 0,
    daily_cap: Annotated[int, typer.Option(min=1, max=50, help="Bots it may make a day.")] = 5,
    session: Annotated[
        str | None, typer.Option(help="A Telethon StringSession from elsewhere, instead of logging in here.")
    ] = None,
) -> None:
    """Log a Telegram account in (Telegram sends a code to its app) and add it to the bot factory's pool.
    Its api_hash and session are stored encrypted."""
    import re

    from hutch.botfactory.gateway import is_session, log_in
    from hutch.botfactory.service import CreatorAccounts, NewAccount

    if not re.fullmatch(r"\+[1-9]\d{6,14}", phone):
        raise fail("Give the phone number in E.164 form, like +14155550100.", 2)
    secret_hash = api_hash or typer.prompt("api_hash", hide_input=True)
    if not re.fullmatch(r"[0-9a-fA-F]{16,64}", secret_hash):
        raise fail("The api_hash is the hexadecimal string my.telegram.org shows.", 2)
    if session is not None and not is_session(session):
        raise fail("--session is not a Telethon StringSession; leave it out to log the account in here.", 2)
    if session is None:
        console.print(f"Logging in {phone}: Telegram sends a code to the account's Telegram app.")

        async def ask_code() -> str:
            return str(typer.prompt("Code"))

        async def ask_password() -> str:
            return str(typer.prompt("Two-step verification password", hide_input=True))

        try:
            session = asyncio.run(log_in(phone, api_id, secret_hash, ask_code, ask_password))
        except Exception as exc:  # noqa: BLE001 - Telethon raises many kinds; the user needs the words
            raise fail(f"Telegram refused the login: {exc}") from None
    new = NewAccount(phone, api_id, secret_hash, session, priority, daily_cap)

    async def work(uow: UnitOfWork, settings: Settings) -> str:
        box = SecretBox([k.get_secret_value() for k in settings.encryption_keys])
        return (await CreatorAccounts(uow.session, box).add(new)).id

    account_id = in_transaction(work)
    console.print(
        f"Creator account {phone} ({account_id}) added; the health check confirms it within 15 minutes."
    )


@app.command()
def demo(
    orgs: Annotated[int, typer.Option(min=1, max=12, help="How many demo organisations to create.")] = 12,
) -> None:
    """Fill this deployment with demo data (organisations on several plans, agents with documents and
    conversations, payments, voice sessions, alerts over 90 days) so every page and chart shows something."""
    from hutch.admin.demo import DEMO_PASSWORD

    settings = settings_or_exit()
    with database_or_exit(settings, apply_migrations=settings.uses_embedded_database) as handle:
        try:
            report = asyncio.run(_fill_demo(handle, orgs))
        except HutchError as exc:
            raise fail(f"{exc.detail} (Is the demo data loaded already?)") from None
    console.print(
        f"Demo data loaded: {report.orgs} organisations, {report.agents} agents, "
        f"{report.documents} documents, "
        f"{report.messages:,} messages, {report.voice_sessions} voice sessions, {report.payments} payments, "
        f"{report.alerts} alerts."
    )
    console.print(f"Log in at {settings.base_url}/login with any of these (password: {DEMO_PASSWORD}):")
    for email in report.logins:
        console.print(f"  {email}")


async def _fill_demo(handle: DatabaseHandle, orgs: int) -> DemoReport:
    from hutch.admin.demo import DemoFiller
    from hutch.core.metrics import Metrics
    from hutch.resources import build_worker_resources

    database = Database(handle.url, pool_size=2, max_overflow=0)
    resources = build_worker_resources(handle.settings, database, Metrics())
    try:
        # Document ingestion and alert delivery are queued with the data, and run in the worker.
        async with unit_of_work(database, resources.jobs) as uow:
            with console.status("Creating demo data…") as status:
                return await DemoFiller(uow, resources).fill(
                    orgs, lambda step: status.update(f"Demo: {step}…")
                )
    finally:
        await resources.close()
        await database.dispose()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
