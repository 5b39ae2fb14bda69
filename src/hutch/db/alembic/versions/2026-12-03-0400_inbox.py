"""The inbox: conversation status (needs a human, taken over), end users as the channel knows them (and
blocked ones), human messages, and full-text search over messages.

Revision ID: 0023_inbox
Revises: 0022_job_lock_lookup
Create Date: 2026-12-03 04:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_inbox"
down_revision: str | None = "0022_job_lock_lookup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not indexed: conversations stay updated in place (HOT) by every message; the inbox filters an org's.
    op.add_column(
        "conversations",
        sa.Column("status", sa.String(length=32), server_default="open", nullable=False),
    )
    op.add_column("conversations", sa.Column("taken_over_by", sa.String(length=32), nullable=True))
    op.add_column("conversations", sa.Column("taken_over_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("needs_human_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        "fk_conversations_taken_over_by_users",
        "conversations",
        "users",
        ["taken_over_by"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("messages", sa.Column("author_id", sa.String(length=32), nullable=True))
    op.create_foreign_key(
        "fk_messages_author_id_users", "messages", "users", ["author_id"], ["id"], ondelete="SET NULL"
    )
    op.create_index(
        "ix_messages_content_fts",
        "messages",
        [sa.text("to_tsvector('simple', content)")],
        postgresql_using="gin",
    )
    op.create_table(
        "end_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name="fk_end_users_org_id_orgs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["blocked_by"], ["users.id"], name="fk_end_users_blocked_by_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_end_users"),
    )
    op.create_index("uq_end_users_identity", "end_users", ["org_id", "channel", "external_id"], unique=True)
    # Everyone who already talked to an agent; their names are what the conversation knows (the channel
    # tells more when they open their next conversation).
    op.execute(
        """
        INSERT INTO end_users (id, org_id, channel, external_id, display_name)
        SELECT 'eu_' || substr(md5(org_id || ':' || channel || ':' || end_user), 1, 24),
               org_id, channel, end_user, left(end_user, 200)
        FROM (SELECT DISTINCT org_id, channel, end_user FROM conversations) AS known
        ON CONFLICT DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_index("uq_end_users_identity", table_name="end_users")
    op.drop_table("end_users")
    op.drop_index("ix_messages_content_fts", table_name="messages")
    op.drop_constraint("fk_messages_author_id_users", "messages", type_="foreignkey")
    op.drop_column("messages", "author_id")
    # Human messages stay in the history as the business's answers.
    op.execute("UPDATE messages SET role = 'assistant' WHERE role = 'human'")
    op.drop_constraint("fk_conversations_taken_over_by_users", "conversations", type_="foreignkey")
    op.drop_column("conversations", "needs_human_at")
    op.drop_column("conversations", "taken_over_at")
    op.drop_column("conversations", "taken_over_by")
    op.drop_column("conversations", "status")
