"""MCP servers and webhook tools an org connects, and the tools its agents may call through them.

Revision ID: 0027_connected_tools
Revises: 0026_message_search_column
Create Date: 2026-12-03 10:00:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0027_connected_tools"
down_revision: str | None = "0026_message_search_column"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
