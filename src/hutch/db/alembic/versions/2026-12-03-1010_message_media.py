"""Files people send in chat (images, voice notes, documents), stored with their message.

Revision ID: 0028_message_media
Revises: 0027_connected_tools
Create Date: 2026-12-03 10:10:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0028_message_media"
down_revision: str | None = "0027_connected_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
