"""``hutch admin rotate-keys`` re-encrypts stored secrets with the newest key, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet

from hutch.core.security import SecretBox
from hutch.db.urls import libpq_conninfo
from tests.conftest import TEST_SECRET_KEY, PostgresServer


@pytest.fixture
def operator_db(postgres: PostgresServer, migrated_template: str) -> Iterator[str]:
    url = postgres.create_database(prefix="hutch_rotate", template=migrated_template)
    yield url
    postgres.drop_database(url)


def test_rotation_moves_secrets_to_the_newest_key_and_reports_unreadable_ones(operator_db: str) -> None:
    old, new, lost = (Fernet.generate_key().decode() for _ in range(3))
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        conn.execute("INSERT INTO orgs (id, name, plan) VALUES ('org_r', 'R', 'free')")
        for n in range(3):
            conn.execute(
                "INSERT INTO provider_keys (id, org_id, provider, api_key_encrypted, last4) "
                "VALUES (%s, %s, %s, %s, %s)",
                (f"pk_{n}", "org_r", f"p{n}", SecretBox([old]).encrypt(f"sk-secret-{n}"), "0000"),
            )
        conn.execute(
            "INSERT INTO outbound_emails (id, to_address, subject, body_encrypted, kind) "
            "VALUES (%s, %s, %s, %s, %s)",
            ("eml_lost", "a@b.c", "s", SecretBox([lost]).encrypt("body"), "test"),
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUTCH_")}
    env.update(
        HUTCH_DATABASE_URL=operator_db, HUTCH_SECRET_KEY=TEST_SECRET_KEY, HUTCH_ENCRYPTION_KEYS=f"{new},{old}"
    )
    result = subprocess.run(
        [sys.executable, "-m", "hutch.cli", "admin", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "provider_keys: 3 re-encrypted" in result.stderr
    assert "outbound_emails: 1 value(s) no configured key can read (first: eml_lost)" in result.stderr
    assert "sk-secret" not in result.stdout + result.stderr
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        rows = conn.execute("SELECT id, api_key_encrypted FROM provider_keys ORDER BY id").fetchall()
    only_new = SecretBox([new])
    assert [only_new.decrypt(str(r[1])) for r in rows] == ["sk-secret-0", "sk-secret-1", "sk-secret-2"]
