"""Conversations are indexed by agent alone, so counting a message updates the row in place (HOT).

The (agent_id, last_message_at) index served no query (lists order by last_message_at or created_at), and
its second column made each message's update of the conversation insert into every index of the table.

Revision ID: 0020_conversations_hot_updates
Revises: 0019_agent_has_documents
Create Date: 2026-11-30 18:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_conversations_hot_updates"
down_revision: str | None = "0019_agent_has_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_conversations_agent", "conversations", ["agent_id"], unique=False)
    op.drop_index("ix_conversations_agent_last", table_name="conversations")


def downgrade() -> None:
    op.create_index(
        "ix_conversations_agent_last", "conversations", ["agent_id", "last_message_at"], unique=False
    )
    op.drop_index("ix_conversations_agent", table_name="conversations")
