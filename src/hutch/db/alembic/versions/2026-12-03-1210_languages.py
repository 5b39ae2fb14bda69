"""The language of a person's dashboard and of an org's bot notices.

Revision ID: 0035_languages
Revises: 0034_plan_includes
Create Date: 2026-12-03 12:10:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0035_languages"
down_revision: str | None = "0034_plan_includes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
