"""Browser tools: screenshots of each step and the tool calls shown on messages.

Revision ID: 0037_browser_tools
Revises: 0036_sso_identities
Create Date: 2026-12-03 12:30:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0037_browser_tools"
down_revision: str | None = "0036_sso_identities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
