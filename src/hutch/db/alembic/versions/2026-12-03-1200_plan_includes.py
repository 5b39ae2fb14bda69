"""What an active subscription provisions, and its progress per org.

Revision ID: 0034_plan_includes
Revises: 0033_end_user_limits
Create Date: 2026-12-03 12:00:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0034_plan_includes"
down_revision: str | None = "0033_end_user_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
