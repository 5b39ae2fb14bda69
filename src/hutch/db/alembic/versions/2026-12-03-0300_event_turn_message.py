"""An inbox event remembers the message its turn stored, so a retried job resumes the turn instead of
storing and admitting the message twice.

Revision ID: 0021_event_turn_message
Revises: 0020_conversations_hot_updates
Create Date: 2026-12-03 03:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_event_turn_message"
down_revision: str | None = "0020_conversations_hot_updates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("external_events", sa.Column("turn_message_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("external_events", "turn_message_id")
