"""``hutch botfactory add-account`` as an operator runs it (with a session from elsewhere: the Telethon
login itself needs Telegram)."""

from __future__ import annotations

import psycopg

from hutch.db.urls import libpq_conninfo
from tests.accounts.test_admin_cli import hutch, operator_db  # noqa: F401 - the fixture
from tests.fakes.botfather import fake_session

API_HASH = "0123456789abcdef0123456789abcdef"
SESSION = fake_session(1)


def test_add_account_stores_it_encrypted_and_refuses_bad_input(operator_db: str) -> None:  # noqa: F811
    args = ["botfactory", "add-account", "--phone", "+15550000001", "--api-id", "12345"]
    added = hutch(operator_db, *args, "--api-hash", API_HASH, "--session", SESSION, "--priority", "3")
    assert added.returncode == 0, added.stderr
    assert "Creator account +15550000001" in added.stderr and API_HASH not in added.stderr
    with psycopg.connect(libpq_conninfo(operator_db)) as conn:
        rows = conn.execute(
            "SELECT phone, priority, status, api_hash_encrypted, session_encrypted FROM creator_accounts"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("+15550000001", 3, "unknown")]
    assert API_HASH not in str(rows) and SESSION not in str(rows)

    again = hutch(operator_db, *args, "--api-hash", API_HASH, "--session", SESSION)
    assert again.returncode == 1 and "already in the pool" in again.stderr
    bad_phone = hutch(
        operator_db, "botfactory", "add-account", "--phone", "0155", "--api-id", "1", "--api-hash", API_HASH
    )
    assert bad_phone.returncode == 2 and "E.164" in bad_phone.stderr
    # The api_hash is asked for, hidden, when not on the command line.
    prompted = hutch(operator_db, "botfactory", "add-account", "--phone", "+15550000002", "--api-id", "1",
                     "--session", SESSION, stdin="not-hex\n")  # fmt: skip
    assert prompted.returncode == 2 and "hexadecimal" in prompted.stderr
