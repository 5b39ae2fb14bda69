"""What an active subscription provisions, and its progress per org.

Revision ID: 0034_plan_includes
Revises: 0033_end_user_limits
Create Date: 2026-12-03 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034_plan_includes"
down_revision: str | None = "0033_end_user_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("billing_accounts", sa.Column("past_due_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "inclusions",
        sa.Column("org_id", sa.String(32), sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("item", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(32), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column(
            "channel_id", sa.String(32), sa.ForeignKey("channels.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column(
            "bot_request_id",
            sa.String(32),
            sa.ForeignKey("bot_requests.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("notified_state", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inclusions")
    op.drop_column("billing_accounts", "past_due_since")
