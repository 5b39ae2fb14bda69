"""channels: web chat widgets, Telegram links through the platform bot, daily message counts

Revision ID: 0008_channel_widget_usage
Revises: 0007_channels
Create Date: 2026-11-30 11:25:20.846232+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_channel_widget_usage"
down_revision: str | None = "0007_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_usage_daily",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("inbound", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("outbound", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_channel_usage_daily_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_channel_usage_daily_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "channel", "day", name=op.f("pk_channel_usage_daily")),
    )
    op.create_index(op.f("ix_channel_usage_daily_org_id"), "channel_usage_daily", ["org_id"], unique=False)
    op.add_column("channel_links", sa.Column("expected_username", sa.String(length=64), nullable=True))
    op.add_column(
        "channels",
        sa.Column(
            "allowed_origins",
            postgresql.ARRAY(sa.String(length=255)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.alter_column("channels", "username", existing_type=sa.VARCHAR(length=64), nullable=True)
    op.alter_column("channels", "token_encrypted", existing_type=sa.TEXT(), nullable=True)
    op.alter_column("channels", "webhook_secret_hash", existing_type=sa.VARCHAR(length=64), nullable=True)


def downgrade() -> None:
    # Widgets have no bot columns to fill; platform-bot links have no place in the older schema.
    op.execute("DELETE FROM channels WHERE type = 'webchat'")
    op.execute("DELETE FROM channel_links WHERE channel = 'telegram'")
    op.alter_column("channels", "webhook_secret_hash", existing_type=sa.VARCHAR(length=64), nullable=False)
    op.alter_column("channels", "token_encrypted", existing_type=sa.TEXT(), nullable=False)
    op.alter_column("channels", "username", existing_type=sa.VARCHAR(length=64), nullable=False)
    op.drop_column("channels", "allowed_origins")
    op.drop_column("channel_links", "expected_username")
    op.drop_index(op.f("ix_channel_usage_daily_org_id"), table_name="channel_usage_daily")
    op.drop_table("channel_usage_daily")
