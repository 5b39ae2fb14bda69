"""Suspended organisations and users, and data exports and deletions run as jobs.

Revision ID: 0024_suspension_deletion
Revises: 0023_inbox
Create Date: 2026-12-03 04:10:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0024_suspension_deletion"
down_revision: str | None = "0023_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
