"""Default or weak secrets refused at start-up in production mode, and origins that would echo any site
refused in every mode."""

from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.fernet import Fernet

from hutch.settings import SettingsError, load_settings
from tests.conftest import TEST_SECRET_KEY

STRONG = secrets.token_urlsafe(48)
WEAK = [
    "change-me-change-me-change-me-change-me",
    "my-super-secret-key-for-production-use-1234",
    "x" * 48,
    "abababababababababababababababababababab",
    TEST_SECRET_KEY,  # the suite's own, which a copied test setup would bring along
]


def production(monkeypatch: pytest.MonkeyPatch, secret_key: str, encryption_key: str | None = None) -> None:
    monkeypatch.setenv("HUTCH_ENV", "production")
    monkeypatch.setenv("HUTCH_DATABASE_URL", "postgresql+asyncpg://hutch@db.internal/hutch")
    monkeypatch.setenv("HUTCH_SECRET_KEY", secret_key)
    monkeypatch.setenv("HUTCH_ENCRYPTION_KEYS", encryption_key or Fernet.generate_key().decode())


@pytest.mark.parametrize(
    "weak", WEAK, ids=["change-me", "secret-word", "one-letter", "two-letters", "suite-key"]
)
def test_default_or_weak_secrets_refused_in_production(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    # What `hutch serve` and `hutch worker` load first; tests/test_cli.py shows its refusal stops them
    production(monkeypatch, weak)
    with pytest.raises(SettingsError, match="HUTCH_SECRET_KEY looks like a placeholder") as refused:
        load_settings()
    assert weak not in str(refused.value)  # the refusal does not print the secret


def test_a_fernet_key_of_repeated_bytes_is_refused_and_strong_ones_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production(monkeypatch, STRONG, base64.urlsafe_b64encode(bytes(32)).decode())
    with pytest.raises(SettingsError, match="HUTCH_ENCRYPTION_KEYS"):
        load_settings()
    production(monkeypatch, STRONG)
    assert load_settings().secret_key is not None  # what the docs tell operators to generate is accepted


@pytest.mark.parametrize(
    "origin", ["*", "null", "https://*.example.com", "app.example", "https://a.example/x"]
)
def test_cors_wildcards_are_refused(monkeypatch: pytest.MonkeyPatch, origin: str) -> None:
    monkeypatch.setenv("HUTCH_ALLOWED_ORIGINS", f"https://app.example,{origin}")
    with pytest.raises(SettingsError, match="HUTCH_ALLOWED_ORIGINS"):
        load_settings()
