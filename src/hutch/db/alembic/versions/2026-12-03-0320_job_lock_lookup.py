"""Queued jobs are found by their lock through an index, so fetching the next job stays cheap with thousands
of locked jobs waiting.

Procrastinate's fetch skips a job whose lock another queued or running job holds. Its own indexes find
locks of running jobs only, so each fetch scanned every waiting job once chat turns (locked per chat) came
in thousands. Concurrently built: the jobs table is in use while the migration runs.

Revision ID: 0022_job_lock_lookup
Revises: 0021_event_turn_message
Create Date: 2026-12-03 03:20:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_job_lock_lookup"
down_revision: str | None = "0021_event_turn_message"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_procrastinate_jobs_waiting_lock "
            "ON procrastinate_jobs (lock, id) WHERE lock IS NOT NULL AND status IN ('todo', 'doing')"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_procrastinate_jobs_waiting_lock")
