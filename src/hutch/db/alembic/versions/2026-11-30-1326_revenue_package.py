"""revenue package: which prepaid package a purchase bought

Revision ID: 0016_revenue_package
Revises: 0015_runtime_host_cost
Create Date: 2026-11-30 13:26:22.993508+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_revenue_package"
down_revision: str | None = "0015_runtime_host_cost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("revenue_events", sa.Column("package", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("revenue_events", "package")
