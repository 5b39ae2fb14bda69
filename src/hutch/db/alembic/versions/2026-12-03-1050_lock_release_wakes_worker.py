"""A job that ends wakes the workers when another job waits for its lock.

Jobs of one chat share a lock, so they run one at a time, in order. A worker hears of a new job at once
(procrastinate notifies on insert), but a job deferred while its chat's previous job was still running is
not fetchable then, and nothing told the workers when the lock came free: the person's second message
waited for the next poll, up to five seconds. This trigger sends the same notification as an insert for the
oldest job waiting on the lock, as soon as the running one ends (finished, failed, retried or deleted).

Revision ID: 0032_lock_release_wakes_worker
Revises: 0031_managed_bots
Create Date: 2026-12-03 10:50:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032_lock_release_wakes_worker"
down_revision: str | None = "0031_managed_bots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION hutch_notify_lock_released() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            waiting RECORD;
            payload TEXT;
        BEGIN
            SELECT id, queue_name INTO waiting FROM procrastinate_jobs
            WHERE lock = OLD.lock AND status = 'todo' AND id <> OLD.id
            ORDER BY id LIMIT 1;
            IF FOUND THEN
                payload := json_build_object('type', 'job_inserted', 'job_id', waiting.id)::text;
                PERFORM pg_notify('procrastinate_queue_v1#' || waiting.queue_name, payload);
                PERFORM pg_notify('procrastinate_any_queue_v1', payload);
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER hutch_jobs_lock_released_on_update AFTER UPDATE OF status ON procrastinate_jobs "
        "FOR EACH ROW WHEN (OLD.status = 'doing' AND NEW.status <> 'doing' AND OLD.lock IS NOT NULL) "
        "EXECUTE FUNCTION hutch_notify_lock_released()"
    )
    op.execute(
        "CREATE TRIGGER hutch_jobs_lock_released_on_delete AFTER DELETE ON procrastinate_jobs "
        "FOR EACH ROW WHEN (OLD.status = 'doing' AND OLD.lock IS NOT NULL) "
        "EXECUTE FUNCTION hutch_notify_lock_released()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS hutch_jobs_lock_released_on_delete ON procrastinate_jobs")
    op.execute("DROP TRIGGER IF EXISTS hutch_jobs_lock_released_on_update ON procrastinate_jobs")
    op.execute("DROP FUNCTION IF EXISTS hutch_notify_lock_released()")
