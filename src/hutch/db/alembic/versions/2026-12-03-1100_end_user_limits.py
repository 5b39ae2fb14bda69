"""Per-person limits: an agent's messages a minute and a day for one end user, and the inbox's note of who
went past them.

Revision ID: 0033_end_user_limits
Revises: 0032_lock_release_wakes_worker
Create Date: 2026-12-03 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_end_user_limits"
down_revision: str | None = "0032_lock_release_wakes_worker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("end_user_messages_per_minute", sa.Integer(), nullable=True))
    op.add_column("agents", sa.Column("end_user_messages_per_day", sa.Integer(), nullable=True))
    op.add_column("end_users", sa.Column("limited_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("end_users", sa.Column("limited_note", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("end_users", "limited_note")
    op.drop_column("end_users", "limited_at")
    op.drop_column("agents", "end_user_messages_per_day")
    op.drop_column("agents", "end_user_messages_per_minute")
