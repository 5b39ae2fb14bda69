"""Alembic, driven from Python: the CLI, start-up and the tests all use these functions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from hutch.db.urls import psycopg_url

ALEMBIC_DIR = Path(__file__).parent / "alembic"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option(
        "file_template",
        "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s",
    )
    config.set_main_option("truncate_slug_length", "40")
    config.set_main_option("timezone", "UTC")
    config.attributes["database_url"] = database_url
    return config


def head_revisions() -> set[str]:
    script = ScriptDirectory(str(ALEMBIC_DIR))
    return set(script.get_heads())


def current_revisions_of(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def current_revisions(database_url: str) -> set[str]:
    engine = create_engine(psycopg_url(database_url))
    try:
        with engine.connect() as conn:
            return current_revisions_of(conn)
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrated schema differ (a migration is missing)."""
    command.check(alembic_config(database_url))


def revision(database_url: str, message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate)
