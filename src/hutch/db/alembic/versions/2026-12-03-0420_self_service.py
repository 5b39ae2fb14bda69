"""What customers set for themselves: notification preferences and the like.

Revision ID: 0025_self_service
Revises: 0024_suspension_deletion
Create Date: 2026-12-03 04:20:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0025_self_service"
down_revision: str | None = "0024_suspension_deletion"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
