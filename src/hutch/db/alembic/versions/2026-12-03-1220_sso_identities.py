"""Single sign-on: the providers linked to an account, orgs that require them, and the states of completed
sign-ins (each works once).

Revision ID: 0036_sso_identities
Revises: 0035_languages
Create Date: 2026-12-03 12:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036_sso_identities"
down_revision: str | None = "0035_languages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDER = sa.Enum("google", "oidc", name="sso_provider", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("provider", PROVIDER, nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sso_identities_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sso_identities"),
        sa.UniqueConstraint("provider", "subject", name="uq_sso_identities_provider_subject"),
        sa.UniqueConstraint("user_id", "provider", name="uq_sso_identities_user_id_provider"),
    )
    op.add_column("orgs", sa.Column("required_sso_provider", PROVIDER, nullable=True))
    op.create_table(
        "sso_used_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sso_used_states"),
    )
    op.create_index("ix_sso_used_states_expires_at", "sso_used_states", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sso_used_states_expires_at", table_name="sso_used_states")
    op.drop_table("sso_used_states")
    op.drop_column("orgs", "required_sso_provider")
    op.drop_table("sso_identities")
