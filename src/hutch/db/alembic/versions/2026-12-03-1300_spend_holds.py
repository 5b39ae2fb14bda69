"""Spend holds: a call's maximum cost held against a key's budget and an org's credits until it settles.

Revision ID: 0038_spend_holds
Revises: 0037_browser_tools
Create Date: 2026-12-03 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038_spend_holds"
down_revision: str | None = "0037_browser_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spend_holds",
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("key_cents", sa.BigInteger(), nullable=False),
        sa.Column("credit_cents", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reference"),
    )
    op.create_index(op.f("ix_spend_holds_api_key_id"), "spend_holds", ["api_key_id"])
    op.create_index(op.f("ix_spend_holds_expires_at"), "spend_holds", ["expires_at"])
    op.create_index(op.f("ix_spend_holds_org_id"), "spend_holds", ["org_id"])


def downgrade() -> None:
    op.drop_table("spend_holds")
