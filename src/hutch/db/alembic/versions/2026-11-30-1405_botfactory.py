"""Bot factory: creator accounts, bot requests, ownership verification; agent avatars.

Revision ID: 0017_botfactory
Revises: 0016_revenue_package
Create Date: 2026-11-30 14:05:27.296045+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_botfactory"
down_revision: str | None = "0016_revenue_package"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "creator_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("api_hash_encrypted", sa.Text(), nullable=False),
        sa.Column("session_encrypted", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "locked",
                "banned",
                "unknown",
                name="creator_account_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("created_bots", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("resting_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creator_accounts")),
        sa.UniqueConstraint("phone", name=op.f("uq_creator_accounts_phone")),
    )
    op.create_table(
        "agent_avatars",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_avatars_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_agent_avatars_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_avatars")),
    )
    op.create_index(op.f("ix_agent_avatars_org_id"), "agent_avatars", ["org_id"], unique=False)
    op.create_table(
        "bot_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "creating",
                "succeeded",
                "failed",
                name="bot_request_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("bot_name", sa.String(length=64), nullable=False),
        sa.Column("username_base", sa.String(length=64), nullable=False),
        sa.Column("bot_username", sa.String(length=64), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["creator_accounts.id"],
            name=op.f("fk_bot_requests_account_id_creator_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_bot_requests_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_bot_requests_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_bot_requests_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_requests")),
    )
    op.create_index(op.f("ix_bot_requests_agent_id"), "bot_requests", ["agent_id"], unique=False)
    op.create_index(op.f("ix_bot_requests_org_id"), "bot_requests", ["org_id"], unique=False)
    op.create_index(
        "uq_bot_requests_agent_open",
        "bot_requests",
        ["agent_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'creating')"),
    )
    op.create_table(
        "bot_verifications",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("code_encrypted", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_telegram_id", sa.String(length=32), nullable=True),
        sa.Column("owner_username", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_bot_verifications_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_bot_verifications_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_bot_verifications")),
    )
    op.create_index(op.f("ix_bot_verifications_org_id"), "bot_verifications", ["org_id"], unique=False)
    op.add_column("channels", sa.Column("owner_external_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("channels", "owner_external_id")
    op.drop_index(op.f("ix_bot_verifications_org_id"), table_name="bot_verifications")
    op.drop_table("bot_verifications")
    op.drop_index(
        "uq_bot_requests_agent_open",
        table_name="bot_requests",
        postgresql_where=sa.text("status IN ('queued', 'creating')"),
    )
    op.drop_index(op.f("ix_bot_requests_org_id"), table_name="bot_requests")
    op.drop_index(op.f("ix_bot_requests_agent_id"), table_name="bot_requests")
    op.drop_table("bot_requests")
    op.drop_index(op.f("ix_agent_avatars_org_id"), table_name="agent_avatars")
    op.drop_table("agent_avatars")
    op.drop_table("creator_accounts")
