"""Single sign-on: the providers linked to an account, and orgs that require them.

Revision ID: 0036_sso_identities
Revises: 0035_languages
Create Date: 2026-12-03 12:20:00.000000+00:00
"""

from collections.abc import Sequence

revision: str = "0036_sso_identities"
down_revision: str | None = "0035_languages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
