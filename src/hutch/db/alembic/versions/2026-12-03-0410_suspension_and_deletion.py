"""Suspended organisations and users, and data exports and deletions run as jobs.

Revision ID: 0024_suspension_deletion
Revises: 0023_inbox
Create Date: 2026-12-03 04:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024_suspension_deletion"
down_revision: str | None = "0023_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("orgs", "users"):
        op.add_column(table, sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        op.add_column(table, sa.Column("suspension_reason", sa.Text(), nullable=True))
    op.create_table(
        "data_exports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column(
            "subject",
            sa.Enum("org", "user", name="data_subject", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "ready", "failed", name="export_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    op.create_index(op.f("ix_data_exports_user_id"), "data_exports", ["user_id"], unique=False)
    op.create_table(
        "deletions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "subject",
            sa.Enum("org", "user", name="data_subject", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("subject_label", sa.String(length=320), nullable=False),
        sa.Column("requested_by_user_id", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "running", "done", "failed", name="deletion_status", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("export_id", sa.String(length=32), nullable=True),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletions")),
    )
    op.create_index("ix_deletions_subject", "deletions", ["subject", "subject_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deletions_subject", table_name="deletions")
    op.drop_table("deletions")
    op.drop_index(op.f("ix_data_exports_user_id"), table_name="data_exports")
    op.drop_table("data_exports")
    for table in ("users", "orgs"):
        op.drop_column(table, "suspension_reason")
        op.drop_column(table, "suspended_at")
