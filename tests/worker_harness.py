"""``python -m tests.worker_harness worker ...``: Hutch's own CLI with test jobs registered.

The jobs record their effect in ``job_effects`` inside the job's transaction, so a run that is killed
before it commits leaves nothing behind, and a second run is visible as a second row.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text

from hutch.cli import main
from hutch.db.jobs import JobContext, job

CREATE_EFFECTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS job_effects ("
    " key text PRIMARY KEY, job_id bigint NOT NULL, worker_pid int NOT NULL, at timestamptz DEFAULT now())"
)


@job("tests.record_effect", retry=False)
async def record_effect(ctx: JobContext, key: str, marker_dir: str) -> None:
    await ctx.uow.session.execute(
        text("INSERT INTO job_effects (key, job_id, worker_pid) VALUES (:key, :job_id, :pid)"),
        {"key": key, "job_id": ctx.job_id, "pid": os.getpid()},
    )
    await ctx.uow.session.flush()
    markers = Path(marker_dir)
    (markers / f"started-{key}-{os.getpid()}").touch()
    while (markers / "block").exists():  # the test holds the job here, mid-transaction
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    main()
