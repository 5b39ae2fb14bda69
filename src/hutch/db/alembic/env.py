"""Alembic environment: runs migrations over psycopg (sync), on the URL Hutch passes in."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from hutch.db.models_registry import metadata
from hutch.db.urls import psycopg_url

config = context.config


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    # The job queue's tables belong to procrastinate's own schema file (see the job-queue migration).
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations_online() -> None:
    url = config.attributes["database_url"]
    engine = create_engine(psycopg_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_name=include_name,
            compare_type=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
