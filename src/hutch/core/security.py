"""Passwords, access tokens, opaque tokens, API keys and encryption of secrets at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher

API_KEY_PREFIX = "hk_"
API_KEY_VISIBLE_CHARS = 8  # after "hk_", shown in lists so people can tell keys apart
JWT_ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"

_password_hash = PasswordHash((Argon2Hasher(),))


@cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown costs the same time as a real check."""
    return _password_hash.hash("hutch-timing-equaliser")


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-time check; with no hash (unknown user) it still spends the time of a real check."""
    if password_hash is None:
        _password_hash.verify(password, _dummy_hash())
        return False
    try:
        return _password_hash.verify(password, password_hash)
    except (ValueError, UnknownHashError):  # malformed stored hash
        return False


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_opaque_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_visible_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + API_KEY_VISIBLE_CHARS]


def looks_like_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class InvalidAccessToken(Exception):
    pass


def create_access_token(secret_key: str, user_id: str, ttl: timedelta, **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": user_id,
        "typ": ACCESS_TOKEN_TYPE,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(12),  # two tokens issued in the same second still differ
        **claims,
    }
    return jwt.encode(payload, secret_key, algorithm=JWT_ALGORITHM)


def decode_access_token(secret_key: str, token: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = jwt.decode(
            token, secret_key, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp", "iat"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidAccessToken(str(exc)) from None
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidAccessToken("not an access token")
    return payload


class SecretBox:
    """Encrypts secrets at rest with the newest of ``HUTCH_ENCRYPTION_KEYS``; decrypts with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("cannot decrypt: no configured key matches") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the newest key (for ``hutch admin rotate-keys``)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("cannot decrypt: no configured key matches") from None


def fingerprint(value: str) -> str:
    """A short non-reversible tag for logs (which key, which token) that reveals nothing."""
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()[:6]).decode()
