"""Background jobs: the task registry, the job wrapper, housekeeping, and the procrastinate app.

Domains declare jobs with :func:`job` (and periodic ones with ``cron=``) in their ``jobs.py``. Each job
runs in one transaction opened by the wrapper, receives ids (never objects), and must be safe to run
twice. Jobs are retried with exponential backoff. A worker killed mid-job leaves its job "doing";
another worker (or the same one after a restart) sees the dead worker's heartbeat go stale and runs the
job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import procrastinate
import procrastinate.worker
import structlog
from procrastinate.jobs import Notification
from procrastinate.psycopg_connector import PsycopgConnector

from hutch.core.request_context import set_request_id
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import (
    HOUSEKEEPING_QUEUE,
    TURNS_QUEUE,
    JobContext,
    JobOutbox,
    JobSpec,
    WorkerResources,
    job,
    load_job_modules,
    registry,
)
from hutch.db.urls import libpq_conninfo
from hutch.settings import Settings

log = structlog.get_logger(__name__)
TURNS_POLL_SECONDS = 1.0
OTHER_JOBS_POLL_SECONDS = 5.0  # procrastinate's default


class AnnouncedWorker(procrastinate.worker.Worker):
    """procrastinate's worker, fetching once more when a job was announced while it was fetching.

    Its loop forgets announcements heard during a fetch (it clears its "new job" flag after each one). A
    chat's next turn is announced when the chat's running turn ends (migration 0032); when that came while
    the worker was fetching with a snapshot from just before, the fetch found nothing and the turn waited
    for the next poll: a person's second message, sent quickly, was answered up to a second late.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._announced = 0

    async def _handle_notification(self, *, channel: str, notification: Notification) -> None:
        if notification["type"] == "job_inserted":
            self._announced += 1
        await super()._handle_notification(channel=channel, notification=notification)

    async def _fetch_and_process_jobs(self) -> None:
        while True:
            announced = self._announced
            # Until a fetch finds nothing (or the worker stops); once more when a job was announced meanwhile.
            await super()._fetch_and_process_jobs()  # type: ignore[no-untyped-call]
            if self._announced == announced or self._stop_event.is_set():
                return


async def run_announced_worker(app: procrastinate.App, **options: Any) -> None:
    """:meth:`procrastinate.App.run_worker_async`, with :class:`AnnouncedWorker`."""
    app.perform_import_paths()  # type: ignore[no-untyped-call]
    worker = AnnouncedWorker(app=app, **{**app.worker_defaults, **options})
    await worker.run()  # type: ignore[no-untyped-call]


class JobQueue(JobOutbox):
    """The procrastinate app bound to Hutch's database, with every registered job."""

    def __init__(self, settings: Settings, database_url: str, *, pool_max_size: int = 10) -> None:
        load_job_modules()
        self.settings = settings
        self.connector = PsycopgConnector(
            conninfo=libpq_conninfo(database_url),
            min_size=1,
            max_size=pool_max_size,
            # Fetching the next job must walk the queue in order and stop at the first free one. Planned with
            # the table's statistics of a quiet moment (a few waiting jobs), PostgreSQL would rather gather
            # every waiting job and sort them, which during a burst of thousands costs milliseconds per
            # fetch, and the worker fetches one job at a time. These connections serve only the queue.
            kwargs={"application_name": "hutch-jobs", "options": "-c enable_bitmapscan=off"},
        )
        self.app = procrastinate.App(connector=self.connector)
        self._resources: WorkerResources | None = None
        for spec in registry.specs.values():
            self._register(spec)

    def _register(self, spec: JobSpec) -> None:
        async def run(context: procrastinate.JobContext, /, **kwargs: Any) -> Any:
            return await self._run_job(spec, context, kwargs)

        run.__name__ = spec.name.replace(".", "_")
        task = self.app.task(name=spec.name, pass_context=True, retry=spec.retry, queue=spec.queue)(run)
        if spec.cron is not None:
            # queueing_lock: at most one waiting run of a periodic job, however many workers defer it.
            self.app.periodic(cron=spec.cron, queueing_lock=spec.name)(task)  # type: ignore[arg-type]  # periodic jobs take **kwargs

    async def _run_job(self, spec: JobSpec, context: procrastinate.JobContext, kwargs: dict[str, Any]) -> Any:
        if self._resources is None:
            raise RuntimeError("jobs run only inside a worker started by JobQueue.run_worker")
        job_meta = context.job
        assert job_meta.id is not None
        return await self.execute(
            spec.name, kwargs, job_id=job_meta.id, attempt=job_meta.attempts, resources=self._resources
        )

    async def execute(
        self,
        task_name: str,
        kwargs: dict[str, Any],
        *,
        job_id: int,
        attempt: int,
        resources: WorkerResources,
    ) -> Any:
        """Run one job in its own transaction: commit on success, roll back and re-raise on failure."""
        spec = registry.specs[task_name]
        set_request_id(f"job-{job_id}")
        structlog.contextvars.bind_contextvars(job_id=job_id, task=spec.name)
        started = time.perf_counter()
        outcome = "failed"
        try:
            async with resources.database.sessionmaker() as session:
                uow = UnitOfWork(session, self)
                ctx = JobContext(uow, resources, job_id, attempt, self)
                try:
                    result = await spec.function(ctx, **kwargs)
                except BaseException:
                    await uow.rollback()
                    raise
                await uow.checkpoint()
            outcome = "succeeded"
            return result
        except Exception as exc:
            log.warning("job failed", attempt=attempt + 1, error=f"{exc.__class__.__name__}: {exc}")
            raise
        finally:
            resources.metrics.job_runs.labels(spec.name, outcome).inc()
            resources.metrics.job_duration.labels(spec.name).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("job_id", "task")
            set_request_id(None)

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer(self, task_name: str, *, lock: str | None = None, **kwargs: Any) -> int:
        spec = registry.spec(task_name)
        if lock is None:
            lock = spec.lock_for(kwargs)
        return int(await self.app.configure_task(task_name, lock=lock).defer_async(**kwargs))

    async def queue_counts(self) -> list[tuple[str, str, int]]:
        rows = await self.connector.execute_query_all_async(
            "SELECT task_name, status::text AS status, count(*) AS n FROM procrastinate_jobs "
            "GROUP BY task_name, status"
        )
        return [(row["task_name"], row["status"], int(row["n"])) for row in rows]

    async def retry_stalled_jobs(self) -> int:
        """Requeue jobs whose worker stopped sending heartbeats (killed, lost its machine)."""
        stalled = list(
            await self.app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=self.settings.worker_stalled_timeout
            )
        )
        for stalled_job in stalled:
            log.warning("retrying a job whose worker died", job_id=stalled_job.id, task=stalled_job.task_name)
            await self.app.job_manager.retry_job(stalled_job)
        return len(stalled)

    async def run_worker(
        self,
        resources: WorkerResources,
        *,
        concurrency: int,
        install_signal_handlers: bool = False,
        name: str = "hutch-worker",
    ) -> None:
        """Run a worker until stopped (SIGTERM or SIGINT with ``install_signal_handlers``) or cancelled; jobs
        get a fresh transaction each.

        When the database goes away (a restart, a failover), procrastinate's worker stops; this starts it
        again once the database answers, waiting a little longer each time (up to 30 s). Jobs it was running
        are retried as stalled ones.
        """
        self._resources = resources
        stop = asyncio.Event()
        if install_signal_handlers:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        delay = 1.0
        while not stop.is_set():
            try:
                await self.retry_stalled_jobs()
                log.info(
                    "worker started",
                    concurrency=concurrency,
                    turn_concurrency=resources.settings.turn_concurrency,
                    tasks=len(registry.specs),
                )
                await self._run_until(stop, concurrency, name, resources.settings)
                problem = "the worker stopped on its own (its database connection failed)"
            except (procrastinate.exceptions.ConnectorException, OSError) as exc:
                problem = f"the job queue's database is unreachable ({exc.__class__.__name__})"
            if stop.is_set():
                break
            log.warning(f"{problem}; starting the worker again", retry_in_seconds=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)

    async def _run_until(self, stop: asyncio.Event, concurrency: int, name: str, settings: Settings) -> None:
        """One run of procrastinate's workers, stopped gracefully when ``stop`` is set: turns (which wait on
        models and messengers, holding no database connection meanwhile) with ``turn_concurrency`` slots,
        every other queue with ``concurrency``."""
        others = sorted({spec.queue for spec in registry.specs.values()} - {TURNS_QUEUE})
        # (queues, slots, name, seconds between polls). A turn deferred while its chat's previous turn was
        # ending is woken when that one ends (migration 0032); the rare one deferred in the instant between
        # that check and its commit waits for a poll, so turns are polled each second, not every five.
        pools = [
            (others, concurrency, name, OTHER_JOBS_POLL_SECONDS),
            ([TURNS_QUEUE], settings.turn_concurrency, f"{name}-turns", TURNS_POLL_SECONDS),
        ]
        runs = [
            asyncio.create_task(
                run_announced_worker(
                    self.app,
                    queues=queues,
                    concurrency=slots,
                    name=worker_name,
                    install_signal_handlers=False,
                    update_heartbeat_interval=settings.worker_heartbeat_interval,
                    stalled_worker_timeout=settings.worker_stalled_timeout,
                    shutdown_graceful_timeout=10,
                    fetch_job_polling_interval=poll_seconds,
                )
            )
            for queues, slots, worker_name, poll_seconds in pools
        ]
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({*runs, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            for run in runs:  # stopped, or one failed, or this coroutine cancelled: all shut down gracefully
                if not run.done():
                    run.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await run
        for run in runs:
            failure = run.exception() if run.done() and not run.cancelled() else None
            if failure is not None:
                raise failure


# --- housekeeping -------------------------------------------------------------------------------------


@job("hutch.retry_stalled_jobs", cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def retry_stalled_jobs(ctx: JobContext, timestamp: int) -> int:
    """Every minute: requeue jobs left "doing" by a worker that died (kill -9, lost machine)."""
    return await _queue(ctx).retry_stalled_jobs()


@job("hutch.purge_finished_jobs", cron="17 3 * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def purge_finished_jobs(ctx: JobContext, timestamp: int) -> None:
    """Daily: delete succeeded jobs older than the retention period (failed ones stay for inspection)."""
    await _queue(ctx).app.job_manager.delete_old_jobs(nb_hours=ctx.settings.job_retention_days * 24)


def _queue(ctx: JobContext) -> JobQueue:
    assert isinstance(ctx.queue, JobQueue)  # housekeeping runs only in a worker, which passes its queue
    return ctx.queue


async def wait_cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
