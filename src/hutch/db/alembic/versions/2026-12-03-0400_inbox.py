"""The inbox: conversation status (needs a human, taken over), end users as the channel knows them (and
blocked ones), human messages, and full-text search over messages.

Revision ID: 0023_inbox
Revises: 0022_job_lock_lookup
Create Date: 2026-12-03 04:00:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0023_inbox"
down_revision: str | None = "0022_job_lock_lookup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
