"""The browser of dedicated runtimes.

Revision ID: 0039_runtime_browser
Revises: 0038_spend_holds
Create Date: 2026-12-03 13:10:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0039_runtime_browser"
down_revision: str | None = "0038_spend_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
