"""runtimes: dedicated runtimes and their hosts

Revision ID: 0010_runtimes
Revises: 0009_voice_sessions
Create Date: 2026-11-30 12:14:12.947923+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_runtimes"
down_revision: str | None = "0009_voice_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runtime_hosts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("driver", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("max_runtimes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runtime_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_runtime_hosts_name")),
    )
    op.create_table(
        "runtimes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("host_id", sa.String(length=32), nullable=False),
        sa.Column("driver", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "provisioning",
                "ready",
                "error",
                "stopped",
                name="runtime_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("handle", sa.String(length=255), nullable=True),
        sa.Column("endpoint", sa.String(length=255), nullable=True),
        sa.Column("gateway_token_encrypted", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_runtimes_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["runtime_hosts.id"], name=op.f("fk_runtimes_host_id_runtime_hosts")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_runtimes_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runtimes")),
        sa.UniqueConstraint("agent_id", name=op.f("uq_runtimes_agent_id")),
    )
    op.create_index(op.f("ix_runtimes_host_id"), "runtimes", ["host_id"], unique=False)
    op.create_index(op.f("ix_runtimes_org_id"), "runtimes", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runtimes_org_id"), table_name="runtimes")
    op.drop_index(op.f("ix_runtimes_host_id"), table_name="runtimes")
    op.drop_table("runtimes")
    op.drop_table("runtime_hosts")
