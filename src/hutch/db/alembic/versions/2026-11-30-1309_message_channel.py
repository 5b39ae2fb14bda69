"""message channel: copied from the conversation, for analytics by channel without a join

Revision ID: 0013_message_channel
Revises: 0012_tasks
Create Date: 2026-11-30 13:09:41.502101+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_message_channel"
down_revision: str | None = "0012_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("channel", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE messages SET channel = conversations.channel FROM conversations "
        "WHERE conversations.id = messages.conversation_id"
    )
    op.create_index("ix_messages_created", "messages", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_created", table_name="messages")
    op.drop_column("messages", "channel")
