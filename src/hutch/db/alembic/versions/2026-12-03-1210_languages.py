"""The language of a person's dashboard and of an org's bot notices.

Revision ID: 0035_languages
Revises: 0034_plan_includes
Create Date: 2026-12-03 12:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035_languages"
down_revision: str | None = "0034_plan_includes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: no choice made (a person follows their browser; an org, the deployment's default).
    op.add_column("users", sa.Column("language", sa.String(length=16), nullable=True))
    op.add_column("orgs", sa.Column("language", sa.String(length=16), nullable=True))
    op.add_column(
        "orgs",
        sa.Column("use_end_user_language", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # What the channel says the person speaks (Telegram's language_code), when it says.
    op.add_column("end_users", sa.Column("language", sa.String(length=16), nullable=True))
    # The language an email was written in: its signature and HTML version are sent in the same.
    op.add_column("outbound_emails", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("outbound_emails", "language")
    op.drop_column("end_users", "language")
    op.drop_column("orgs", "use_end_user_language")
    op.drop_column("orgs", "language")
    op.drop_column("users", "language")
