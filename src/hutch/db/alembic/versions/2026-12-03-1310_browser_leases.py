"""Browser leases: the browsers an org has open, counted across processes.

Revision ID: 0039_browser_leases
Revises: 0038_spend_holds
Create Date: 2026-12-03 13:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039_browser_leases"
down_revision: str | None = "0038_spend_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "browser_leases",
        sa.Column("session_key", sa.String(length=200), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_key"),
    )
    op.create_index(op.f("ix_browser_leases_org_id"), "browser_leases", ["org_id"])


def downgrade() -> None:
    op.drop_table("browser_leases")
