"""Exports and deletions run as jobs: each safe to run twice, a failed deletion retried from its last step."""

from __future__ import annotations

from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.deletion.deletions import DELETE_JOB, Deletions
from hutch.deletion.exports import EXPORT_JOB, Exports
from hutch.deletion.flow import FORGET_SCREENSHOTS_JOB

FORGET_EXPORTS_JOB = "deletion.forget_expired_exports"


@job(EXPORT_JOB, lock_per="export_id")
async def build_export(ctx: JobContext, export_id: str) -> str:
    return await Exports.of(ctx.uow, ctx.resources).build(export_id)


@job(DELETE_JOB, lock_per="deletion_id")
async def run_deletion(ctx: JobContext, deletion_id: str) -> str:
    return await Deletions.of(ctx.uow, ctx.resources).run(deletion_id)


@job(FORGET_EXPORTS_JOB, cron="17 * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def forget_expired_exports(ctx: JobContext, timestamp: int = 0) -> int:
    """Every hour: the files of expired exports are removed."""
    return await Exports.of(ctx.uow, ctx.resources).forget_expired()


@job(FORGET_SCREENSHOTS_JOB)
async def forget_screenshots(ctx: JobContext, keys: list[str]) -> str:
    """The images of a deleted agent's screenshots, removed from their store (those gone already skipped)."""
    await ctx.resources.screenshots.delete(keys)
    return f"{len(keys)} screenshot(s) forgotten"
