"""A chat's next job and the end of its running job take turns, so the next one is always announced.

Migration 0032 announces the oldest job waiting on a lock when the job holding it ends. A job deferred at
the very moment the running one ended could slip between the two: its own announcement came while the
running job still held the lock (the fetch found nothing), and the end's trigger ran before the new job
was committed (it found no one waiting). The job then waited for the next poll. Now inserting a job with a
lock and ending the job that holds it take the same transaction-level advisory lock, so one of them
always sees the other committed: the insert waits for the end to commit (its own announcement is then
fetchable), or the end's trigger waits for the insert to commit (and announces it).

Revision ID: 0040_job_lock_turnstile
Revises: 0039_browser_leases
Create Date: 2026-12-03 14:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0040_job_lock_turnstile"
down_revision: str | None = "0039_browser_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both functions take pg_advisory_xact_lock(7270001, hashtext(lock)): the two-integer key space, apart from
# the one-bigint keys of Hutch's other advisory locks.


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION hutch_job_lock_turnstile() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(7270001, hashtext(NEW.lock));
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER hutch_jobs_lock_turnstile BEFORE INSERT ON procrastinate_jobs "
        "FOR EACH ROW WHEN (NEW.lock IS NOT NULL) EXECUTE FUNCTION hutch_job_lock_turnstile()"
    )
    # The announcing function of 0032, taking the same turn before it looks for a waiting job (its query,
    # run after the wait, sees what was committed meanwhile).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION hutch_notify_lock_released() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            waiting RECORD;
            payload TEXT;
        BEGIN
            PERFORM pg_advisory_xact_lock(7270001, hashtext(OLD.lock));
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


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION hutch_notify_lock_released() RETURNS trigger LANGUAGE plpgsql AS $$
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
    op.execute("DROP TRIGGER IF EXISTS hutch_jobs_lock_turnstile ON procrastinate_jobs")
    op.execute("DROP FUNCTION IF EXISTS hutch_job_lock_turnstile()")
