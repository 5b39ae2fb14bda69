from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hutch.settings import Settings, SettingsError, ensure_generated_secrets, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "HUTCH_DATABASE_URL",
        "HUTCH_SECRET_KEY",
        "HUTCH_ENCRYPTION_KEYS",
        "HUTCH_ENV",
        "HUTCH_PORT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HUTCH_PORT", "eighty", "Invalid setting HUTCH_PORT"),
        ("HUTCH_PORT", "70000", "Invalid setting HUTCH_PORT"),
        (
            "HUTCH_DATABASE_URL",
            "mysql://x@y/z",
            "Invalid setting HUTCH_DATABASE_URL: must be a PostgreSQL URL",
        ),
        ("HUTCH_ENCRYPTION_KEYS", "not-a-key", "Invalid setting HUTCH_ENCRYPTION_KEYS"),
        ("HUTCH_LOG_LEVEL", "LOUD", "Invalid setting HUTCH_LOG_LEVEL"),
        ("HUTCH_SECRET_KEY", "short", "HUTCH_SECRET_KEY must be at least 32 characters"),
        ("HUTCH_EGRESS_ALLOW", "wiki.internal,10.0.0.0/99", "HUTCH_EGRESS_ALLOW: '10.0.0.0/99'"),
        ("HUTCH_EGRESS_ALLOW", "http://wiki.internal", "Invalid setting HUTCH_EGRESS_ALLOW"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_egress_allow_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_EGRESS_ALLOW", " wiki.internal, *.corp.example ,10.1.0.0/16,")
    assert load_settings().egress_allow == ["wiki.internal", "*.corp.example", "10.1.0.0/16"]


def test_production_requires_database_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_ENV", "production")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "HUTCH_DATABASE_URL" in str(err.value)
    assert "HUTCH_SECRET_KEY" in str(err.value)
    assert "HUTCH_ENCRYPTION_KEYS" in str(err.value)


def test_settings_read_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "HUTCH_PORT=9123\nHUTCH_ALLOWED_ORIGINS=https://a.example, https://b.example/\n"
    )
    settings = load_settings()
    assert settings.port == 9123
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]


def test_secrets_are_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = ensure_generated_secrets(settings)
    second = ensure_generated_secrets(Settings(data_dir=tmp_path / "data"))
    assert first.secret_key is not None and second.secret_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert [k.get_secret_value() for k in first.encryption_keys] == [
        k.get_secret_value() for k in second.encryption_keys
    ]
    mode = stat.S_IMODE((tmp_path / "data" / "secrets.json").stat().st_mode)
    assert mode == 0o600


def test_given_secrets_are_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_SECRET_KEY", "k" * 40)
    settings = ensure_generated_secrets(Settings(data_dir=tmp_path))
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "k" * 40
