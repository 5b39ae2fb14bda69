"""The inbox's search reads a stored column of each message's words instead of an index on an expression:
a phrase is then checked against the stored positions, not against each candidate's text parsed again.

Adding a generated column rewrites ``messages`` under an exclusive lock (PostgreSQL computes every row's
words), so on a large deployment this migration belongs in a maintenance window.

Revision ID: 0026_message_search_column
Revises: 0025_self_service
Create Date: 2026-12-03 04:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026_message_search_column"
down_revision: str | None = "0025_self_service"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple'::regconfig, content)", persisted=True),
            nullable=False,
        ),
    )
    op.create_index("ix_messages_search", "messages", ["search"], postgresql_using="gin")
    op.drop_index("ix_messages_content_fts", table_name="messages")


def downgrade() -> None:
    op.create_index(
        "ix_messages_content_fts",
        "messages",
        [sa.text("to_tsvector('simple', content)")],
        postgresql_using="gin",
    )
    op.drop_index("ix_messages_search", table_name="messages", postgresql_using="gin")
    op.drop_column("messages", "search")
