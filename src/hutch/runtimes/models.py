"""Dedicated runtimes and the hosts they run on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from hutch.db.base import Base, TimestampMixin, str_enum


class RuntimeStatus(StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    ERROR = "error"
    STOPPED = "stopped"  # suspended: the workspace is kept


class RuntimeHost(TimestampMixin, Base):
    """Where runtimes go: this machine (process driver), a Docker engine, or an EC2 region."""

    __tablename__ = "runtime_hosts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    driver: Mapped[str] = mapped_column(String(16))  # process | docker | ec2
    address: Mapped[str] = mapped_column(String(255), default="")  # docker: socket or ssh://; ec2: region
    max_runtimes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    hourly_cost_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # for margins


class Runtime(TimestampMixin, Base):
    """One agent's dedicated runtime; at most one per agent."""

    __tablename__ = "runtimes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), unique=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("runtime_hosts.id"), index=True)
    driver: Mapped[str] = mapped_column(String(16))
    status: Mapped[RuntimeStatus] = mapped_column(str_enum(RuntimeStatus, "runtime_status"))
    handle: Mapped[str | None] = mapped_column(
        String(255)
    )  # the driver's id: a pid, a container, an instance
    endpoint: Mapped[str | None] = mapped_column(String(255))  # http://host:port
    gateway_token_encrypted: Mapped[str] = mapped_column(Text)  # the platform's bearer token for it
    config_hash: Mapped[str | None] = mapped_column(String(64))  # what it was provisioned with
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
