"""MCP servers and webhook tools an org connects, and the tools its agents may call through them.

Revision ID: 0027_connected_tools
Revises: 0026_message_search_column
Create Date: 2026-12-03 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027_connected_tools"
down_revision: str | None = "0026_message_search_column"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column(
            "transport",
            sa.Enum("streamable_http", "sse", name="mcp_transport", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("headers_encrypted", sa.Text(), nullable=True),
        sa.Column("header_names", postgresql.ARRAY(sa.String(200)), nullable=False),
        sa.Column(
            "status",
            sa.Enum("connected", "unreachable", name="mcp_server_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tools", postgresql.JSONB(), nullable=False),
        sa.Column("tools_listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_mcp_servers_org_id", "mcp_servers", ["org_id"])
    op.create_table(
        "webhook_tools",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("signing_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_webhook_tools_org_id", "webhook_tools", ["org_id"])
    # Agents name connected tools as ``mcp:<server id>:<tool name>`` (MCP allows 128-character names).
    op.alter_column(
        "agents",
        "tools",
        type_=postgresql.ARRAY(sa.String(200)),
        existing_type=postgresql.ARRAY(sa.String(64)),
        existing_nullable=False,
    )


def downgrade() -> None:
    op.execute(
        "UPDATE agents SET tools = ARRAY(SELECT t FROM unnest(tools) AS t "
        "WHERE t NOT LIKE 'mcp:%' AND t NOT LIKE 'webhook:%')"
    )
    op.alter_column(
        "agents",
        "tools",
        type_=postgresql.ARRAY(sa.String(64)),
        existing_type=postgresql.ARRAY(sa.String(200)),
        existing_nullable=False,
    )
    op.drop_index("ix_webhook_tools_org_id", table_name="webhook_tools")
    op.drop_table("webhook_tools")
    op.drop_index("ix_mcp_servers_org_id", table_name="mcp_servers")
    op.drop_table("mcp_servers")
