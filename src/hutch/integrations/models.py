"""MCP servers and webhook tools an org connects; its agents enable their tools by name."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class McpTransport(StrEnum):
    STREAMABLE_HTTP = "streamable_http"
    SSE = "sse"  # the older HTTP+SSE transport


class McpServerStatus(StrEnum):
    CONNECTED = "connected"  # its tools were listed on the last try
    UNREACHABLE = "unreachable"  # the last try failed; ``error`` says why


class McpServer(TimestampMixin, Base):
    """A remote MCP server: where it is, the headers Hutch sends (encrypted), and the tools it listed."""

    __tablename__ = "mcp_servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    transport: Mapped[McpTransport] = mapped_column(str_enum(McpTransport, "mcp_transport"))
    # A JSON object of header names to values, encrypted as one; the names alone are shown.
    headers_encrypted: Mapped[str | None] = mapped_column(Text)
    header_names: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    status: Mapped[McpServerStatus] = mapped_column(str_enum(McpServerStatus, "mcp_server_status"))
    error: Mapped[str | None] = mapped_column(Text)
    # As listed: [{name, description, input_schema}], what turns offer the model without asking again.
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    tools_listed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebhookTool(TimestampMixin, Base):
    """A tool the org serves itself: Hutch POSTs the arguments, signed with the tool's secret."""

    __tablename__ = "webhook_tools"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the arguments' JSON schema
    url: Mapped[str] = mapped_column(String(2000))
    signing_secret_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
