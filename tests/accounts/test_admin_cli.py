"""``hutch admin create-user|grant|revoke`` as an operator runs them, against a real database.

The commands run in this process through Typer's runner (tests/test_cli.py starts the real executable):
a process start per command would cost seconds each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import structlog
from typer.testing import CliRunner

from hutch.cli import app
from hutch.db.urls import libpq_conninfo
from tests.conftest import TEST_SECRET_KEY, PostgresServer


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """The commands set logging up for an operator's terminal; the rest of the suite keeps its own."""
    config = structlog.get_config()
    named = [logging.getLogger(name) for name in ("", *logging.root.manager.loggerDict)]
    kept = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in named]
    yield
    structlog.configure(**config)
    for logger, handlers, level, propagate in kept:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def operator_db(postgres: PostgresServer, migrated_template: str) -> Iterator[str]:
    url = postgres.create_database(prefix="hutch_cli", template=migrated_template)
    yield url
    postgres.drop_database(url)


def hutch(url: str, *args: str, stdin: str | None = None) -> Outcome:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HUTCH_")}
    env.update(HUTCH_DATABASE_URL=url, HUTCH_SECRET_KEY=TEST_SECRET_KEY)
    result = CliRunner().invoke(app, list(args), input=stdin, env=env)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def users(url: str) -> list[tuple[str, bool, bool]]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT email, is_platform_admin, email_verified_at IS NOT NULL FROM users ORDER BY email"
        ).fetchall()
    return [(str(r[0]), bool(r[1]), bool(r[2])) for r in rows]


def test_create_user_grant_and_revoke(operator_db: str) -> None:
    created = hutch(
        operator_db,
        "admin",
        "create-user",
        "--email",
        "Boss@Acme.io",
        "--password",
        "boss-password-1",
        "--platform-admin",
    )
    assert created.returncode == 0, created.stderr
    assert "Created boss@acme.io (platform admin)" in created.stderr
    assert "boss-password-1" not in created.stdout + created.stderr
    # the password is asked for (twice, hidden) when not given
    prompted = hutch(
        operator_db,
        "admin",
        "create-user",
        "--email",
        "ops@acme.io",
        stdin="ops-password-2\nops-password-2\n",
    )
    assert prompted.returncode == 0, prompted.stderr
    assert users(operator_db) == [("boss@acme.io", True, True), ("ops@acme.io", False, True)]

    assert hutch(operator_db, "admin", "grant", "--email", "ops@acme.io").returncode == 0
    assert hutch(operator_db, "admin", "revoke", "--email", "boss@acme.io").returncode == 0
    last = hutch(operator_db, "admin", "revoke", "--email", "ops@acme.io")
    assert last.returncode == 1 and "last platform admin" in last.stderr
    assert users(operator_db) == [("boss@acme.io", False, True), ("ops@acme.io", True, True)]
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]
    assert actions.count("platform_admin_granted") == 2 and actions.count("platform_admin_revoked") == 1


def test_bad_input_changes_nothing(operator_db: str) -> None:
    weak = hutch(operator_db, "admin", "create-user", "--email", "a@acme.io", "--password", "password123")
    assert weak.returncode == 2 and "too common" in weak.stderr
    bad_email = hutch(
        operator_db, "admin", "create-user", "--email", "not-an-email", "--password", "long-pass-9"
    )
    assert bad_email.returncode == 2 and "Invalid email" in bad_email.stderr
    missing = hutch(operator_db, "admin", "grant", "--email", "ghost@acme.io")
    assert missing.returncode == 1 and "No user has the email ghost@acme.io" in missing.stderr
    assert "Traceback" not in weak.stderr + bad_email.stderr + missing.stderr
    assert (
        hutch(
            operator_db, "admin", "create-user", "--email", "a@acme.io", "--password", "long-pass-9"
        ).returncode
        == 0
    )
    duplicate = hutch(
        operator_db, "admin", "create-user", "--email", "A@acme.io", "--password", "long-pass-9"
    )
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    assert users(operator_db) == [("a@acme.io", False, True)]


def test_grant_credits_and_set_plan(operator_db: str) -> None:
    assert (
        hutch(
            operator_db, "admin", "create-user", "--email", "buyer@acme.io", "--password", "pw-long-1x"
        ).returncode
        == 0
    )
    granted = hutch(
        operator_db,
        "admin",
        "grant-credits",
        "--org",
        "buyer@acme.io",
        "--credits-cents",
        "2500",
        "--seconds",
        "3600",
        "--reason",
        "pilot customer",
    )
    assert granted.returncode == 0, granted.stderr
    assert "2500 cents of credits, 3600 seconds" in " ".join(granted.stderr.split())
    nothing = hutch(operator_db, "admin", "grant-credits", "--org", "buyer@acme.io", "--reason", "x")
    assert nothing.returncode == 2 and "--credits-cents" in nothing.stderr
    unknown = hutch(
        operator_db, "admin", "grant-credits", "--org", "nobody@acme.io", "--seconds", "5", "--reason", "x"
    )
    assert unknown.returncode == 1 and "No organisation" in unknown.stderr
    assert hutch(operator_db, "admin", "set-plan", "--org", "buyer@acme.io", "--plan", "pro").returncode == 0
    bad = hutch(operator_db, "admin", "set-plan", "--org", "buyer@acme.io", "--plan", "gold")
    assert bad.returncode == 1 and "Unknown plan 'gold'" in bad.stderr
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        plan = conn.execute("SELECT plan FROM orgs").fetchone()
        entries = conn.execute("SELECT unit, amount, kind FROM ledger_entries ORDER BY unit").fetchall()
        audit = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'billing_grant'").fetchone()
    assert plan == ("pro",)
    assert entries == [("credits", 2500, "grant"), ("seconds", 3600, "grant")]
    assert audit == (1,)


def test_add_a_docker_host_for_runtimes(operator_db: str) -> None:
    added = hutch(
        operator_db, "admin", "add-runtime-host", "--name", "box-1", "--address", "ssh://ops@box-1",
        "--capacity", "8",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "box-1" in added.stdout + added.stderr
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        row = conn.execute(
            "SELECT driver, address, max_runtimes FROM runtime_hosts WHERE name = 'box-1'"
        ).fetchone()
    assert row == ("docker", "ssh://ops@box-1", 8)
    again = hutch(
        operator_db, "admin", "add-runtime-host", "--name", "box-1", "--address", "ssh://ops@box-1",
        "--capacity", "8",
    )  # fmt: skip
    assert again.returncode == 1 and "already named box-1" in again.stdout + again.stderr
    region = hutch(
        operator_db, "admin", "add-runtime-host", "--name", "aws-eu", "--driver", "ec2", "--address",
        "eu-west-1", "--capacity", "50",
    )  # fmt: skip
    assert region.returncode == 0 and "EC2 in eu-west-1" in region.stdout + region.stderr
