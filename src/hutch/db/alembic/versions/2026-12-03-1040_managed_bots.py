"""Managed Telegram bots: a customer's own bot created through the platform bot, and the requests for one.

Revision ID: 0031_managed_bots
Revises: 0030_responses
Create Date: 2026-12-03 10:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_managed_bots"
down_revision: str | None = "0030_responses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "channels", sa.Column("managed", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_table(
        "managed_bot_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent_id", sa.String(32), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("button_id", sa.Integer(), nullable=False),
        sa.Column("suggested_username", sa.String(64), nullable=False),
        sa.Column("telegram_user_id", sa.String(32), nullable=True),
        sa.Column("chat_id", sa.String(32), nullable=True),
        sa.Column(
            "channel_id", sa.String(32), sa.ForeignKey("channels.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("bot_username", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_managed_bot_requests_org_id", "managed_bot_requests", ["org_id"])
    op.create_index("ix_managed_bot_requests_agent_id", "managed_bot_requests", ["agent_id"])
    op.create_index("uq_managed_bot_requests_code", "managed_bot_requests", ["code_hash"], unique=True)
    op.create_index(
        "ix_managed_bot_requests_telegram_user", "managed_bot_requests", ["telegram_user_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_managed_bot_requests_telegram_user", table_name="managed_bot_requests")
    op.drop_index("uq_managed_bot_requests_code", table_name="managed_bot_requests")
    op.drop_index("ix_managed_bot_requests_agent_id", table_name="managed_bot_requests")
    op.drop_index("ix_managed_bot_requests_org_id", table_name="managed_bot_requests")
    op.drop_table("managed_bot_requests")
    op.drop_column("channels", "managed")
