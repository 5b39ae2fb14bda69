"""Secrets never reach the logs, whichever way they are logged."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog
from pydantic import SecretStr

from hutch.core.logging import configure_logging

SECRETS = {
    "password": "correct-horse-battery-staple",
    "api_key": "hk_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7",
    "bot_token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "stripe": "sk_test_51HxYzABCDEFGHIJKLMNOP",
    "db_password": "pg-pass-998877",
}


@pytest.fixture(params=[True, False], ids=["json", "console"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json_logs=request.param, level="DEBUG")
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    configure_logging(json_logs=False, level="INFO")


@pytest.mark.secrets_in_logs  # its input is secrets; what it checks is that none reach the output
def test_secret_fields_and_secret_shaped_text_are_redacted(captured: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info("signup", email="a@example.com", password=SECRETS["password"])
    log.info("key created", key=SECRETS["api_key"], note=f"the key is {SECRETS['api_key']}")
    log.info("headers", headers={"Authorization": f"Bearer {SECRETS['bearer']}", "Accept": "json"})
    log.info("telegram", url=f"https://api.telegram.org/bot{SECRETS['bot_token']}/getMe")
    log.info("stripe", detail=f"calling with {SECRETS['stripe']}")
    log.info("db", url=f"postgresql://hutch:{SECRETS['db_password']}@db:5432/hutch")
    log.info("settings", value=SecretStr("hidden-by-type-123"))
    try:
        raise ValueError(f"token={SECRETS['bot_token']} rejected")
    except ValueError:
        log.exception("failed")
    logging.getLogger("some.library").warning("auth with password=%s", SECRETS["password"])

    output = captured.getvalue()
    assert "a@example.com" in output  # ordinary values stay readable
    for name, secret in SECRETS.items():
        assert secret not in output, f"{name} leaked into the log"
    assert "hidden-by-type-123" not in output
    assert "[redacted]" in output
