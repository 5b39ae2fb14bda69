"""Housekeeping jobs of the cross-cutting machinery."""

from __future__ import annotations

from hutch.core.ratelimit import purge_ended_windows
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job

RATE_LIMIT_PURGE_BATCH = 5_000
RATE_LIMIT_PURGE_MAX_BATCHES = 100


@job("hutch.purge_rate_limit_windows", cron="*/10 * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def purge_rate_limit_windows(ctx: JobContext, timestamp: int) -> int:
    """Every 10 minutes: delete PostgreSQL rate-limit counters whose window has ended.

    Up to half a million rows a run; a larger backlog is finished by the next runs. (Redis expires its
    counters by itself.)
    """
    return await purge_ended_windows(
        ctx.uow.session, batch_size=RATE_LIMIT_PURGE_BATCH, max_batches=RATE_LIMIT_PURGE_MAX_BATCHES
    )
