"""Spend holds: a call's maximum cost held against a key's budget and an org's credits until it settles.

Revision ID: 0038_spend_holds
Revises: 0037_browser_tools
Create Date: 2026-12-03 13:00:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0038_spend_holds"
down_revision: str | None = "0037_browser_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
