"""An org's daily usage counts its tool calls and voice-note transcriptions, and what they cost.

Adding columns with constant defaults rewrites nothing (PostgreSQL 11+ stores the default once).

Revision ID: 0029_tool_usage
Revises: 0028_message_media
Create Date: 2026-12-03 10:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_tool_usage"
down_revision: str | None = "0028_message_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("tool_calls", sa.Integer()),
    ("tool_cost_micro_usd", sa.BigInteger()),
    ("transcription_seconds", sa.Integer()),
    ("transcription_cost_micro_usd", sa.BigInteger()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("usage_daily", sa.Column(name, kind, nullable=False, server_default="0"))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("usage_daily", name)
