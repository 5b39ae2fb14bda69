"""Passwords, access tokens, API keys and encryption of secrets at rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from hutch.core.security import (
    InvalidAccessToken,
    SecretBox,
    api_key_visible_prefix,
    create_access_token,
    decode_access_token,
    hash_password,
    new_api_key,
    verify_password,
)

SECRET = "s" * 40


def test_passwords_hash_with_argon2_and_verify() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse", stored)
    assert not verify_password("correct horse", None)  # unknown user: same work, always false
    assert not verify_password("correct horse", "not-a-hash")


def test_access_tokens_expire_and_are_bound_to_the_secret() -> None:
    token = create_access_token(SECRET, "usr_1", timedelta(minutes=5))
    assert decode_access_token(SECRET, token)["sub"] == "usr_1"
    with pytest.raises(InvalidAccessToken):
        decode_access_token("o" * 40, token)
    expired = create_access_token(SECRET, "usr_1", timedelta(seconds=-1))
    with pytest.raises(InvalidAccessToken):
        decode_access_token(SECRET, expired)
    other_kind = create_access_token(SECRET, "usr_1", timedelta(minutes=5), typ="refresh")
    with pytest.raises(InvalidAccessToken):
        decode_access_token(SECRET, other_kind)


def test_api_keys_are_long_random_and_prefixed() -> None:
    keys = {new_api_key() for _ in range(100)}
    assert len(keys) == 100
    key = keys.pop()
    assert key.startswith("hk_") and len(key) >= 3 + 43
    assert api_key_visible_prefix(key) == key[:11]


def test_secret_box_rotates_keys() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_with_old = SecretBox([old]).encrypt("bot-token-123")
    rotated_box = SecretBox([new, old])  # newest first, old still readable
    assert rotated_box.decrypt(sealed_with_old) == "bot-token-123"
    resealed = rotated_box.rotate(sealed_with_old)
    assert SecretBox([new]).decrypt(resealed) == "bot-token-123"
    with pytest.raises(ValueError, match="no configured key"):
        SecretBox([new]).decrypt(sealed_with_old)
    assert "bot-token-123" not in sealed_with_old
