"""agents.has_documents: whether a turn needs to look for knowledge.

Revision ID: 0019_agent_has_documents
Revises: 0018_web_sessions
Create Date: 2026-11-30 17:45:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_agent_has_documents"
down_revision: str | None = "0018_web_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "agents", sa.Column("has_documents", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.execute(
        "UPDATE agents SET has_documents = true"
        " WHERE EXISTS (SELECT 1 FROM documents WHERE documents.agent_id = agents.id)"
    )


def downgrade() -> None:
    op.drop_column("agents", "has_documents")
