"""voice sessions: LiveKit rooms charged by the second

Revision ID: 0009_voice_sessions
Revises: 0008_channel_widget_usage
Create Date: 2026-11-30 11:59:45.926680+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_voice_sessions"
down_revision: str | None = "0008_channel_widget_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voice_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column("room", sa.String(length=100), nullable=False),
        sa.Column(
            "status",
            sa.Enum("issued", "active", "ended", name="voice_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("untracked", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=100), nullable=True),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("charged_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_voice_sessions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_voice_sessions_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_voice_sessions_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_sessions")),
        sa.UniqueConstraint("room", name=op.f("uq_voice_sessions_room")),
    )
    op.create_index(op.f("ix_voice_sessions_agent_id"), "voice_sessions", ["agent_id"], unique=False)
    op.create_index(
        "ix_voice_sessions_open",
        "voice_sessions",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status <> 'ended'"),
    )
    op.create_index("ix_voice_sessions_org_created", "voice_sessions", ["org_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_voice_sessions_org_created", table_name="voice_sessions")
    op.drop_index(
        "ix_voice_sessions_open", table_name="voice_sessions", postgresql_where=sa.text("status <> 'ended'")
    )
    op.drop_index(op.f("ix_voice_sessions_agent_id"), table_name="voice_sessions")
    op.drop_table("voice_sessions")
