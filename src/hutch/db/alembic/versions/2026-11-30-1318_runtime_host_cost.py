"""runtime host cost: an hourly cost per host, for margins

Revision ID: 0015_runtime_host_cost
Revises: 0014_notifications
Create Date: 2026-11-30 13:18:18.280614+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_runtime_host_cost"
down_revision: str | None = "0014_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "runtime_hosts", sa.Column("hourly_cost_cents", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("runtime_hosts", "hourly_cost_cents")
