"""Responses the Responses API keeps (``store``): what continues them and what reading them back shows.

Revision ID: 0030_responses
Revises: 0029_tool_usage
Create Date: 2026-12-03 10:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030_responses"
down_revision: str | None = "0029_tool_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_responses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent_id", sa.String(32), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("previous_id", sa.String(32), nullable=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("user_message_id", sa.String(32), nullable=True),
        sa.Column("assistant_message_id", sa.String(32), nullable=True),
        sa.Column("end_user", sa.String(255), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("input_items", postgresql.JSONB(), nullable=False),
        sa.Column("output_items", postgresql.JSONB(), nullable=False),
        sa.Column("usage", postgresql.JSONB(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_api_responses_org_id", "api_responses", ["org_id"])
    op.create_index("ix_api_responses_agent_id", "api_responses", ["agent_id"])
    op.create_index("ix_api_responses_conversation_id", "api_responses", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_api_responses_conversation_id", table_name="api_responses")
    op.drop_index("ix_api_responses_agent_id", table_name="api_responses")
    op.drop_index("ix_api_responses_org_id", table_name="api_responses")
    op.drop_table("api_responses")
