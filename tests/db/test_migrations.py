"""Migrations build the schema the models describe, and go down and up again."""

from __future__ import annotations

import psycopg

from hutch.db import migrations
from hutch.db.urls import libpq_conninfo
from tests.conftest import PostgresServer


def _tables(url: str) -> set[str]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_models_match_the_migrated_schema(database_url: str) -> None:
    migrations.check(database_url)  # raises when a model change has no migration


def test_upgrade_downgrade_upgrade_round_trip(postgres: PostgresServer) -> None:
    url = postgres.create_database("hutch_migrate")
    migrations.upgrade(url)
    assert migrations.current_revisions(url) == migrations.head_revisions()
    assert "procrastinate_jobs" in _tables(url)
    migrations.downgrade(url, "base")
    assert migrations.current_revisions(url) == set()
    assert _tables(url) <= {"alembic_version"}
    migrations.upgrade(url)
    assert migrations.current_revisions(url) == migrations.head_revisions()


def test_migration_files_follow_the_naming_scheme() -> None:
    import re

    names = [p.name for p in (migrations.ALEMBIC_DIR / "versions").glob("*.py")]
    assert names
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py", name) for name in names), names
