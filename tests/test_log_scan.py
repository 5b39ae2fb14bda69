"""The suite-wide log scan recognises what it is looking for (and lets ordinary text through)."""

from __future__ import annotations

from tests.log_scan import leaks_in


def test_secret_shapes_are_recognised() -> None:
    assert leaks_in("sent key hk_" + "A" * 43) == ["a API key (hk_AAAAA…)"]
    assert leaks_in("token=123456789:AAE" + "x" * 32)[0].startswith("a bot token")
    assert leaks_in("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3IifQ.c2lnbmF0dXJlMTIz")[0].startswith(
        "a access"
    )
    assert leaks_in("password a-long-enough-password") == ["the literal secret a-lo…"]
    assert leaks_in("hash=$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")[0].startswith("a password hash")


def test_ordinary_log_lines_pass() -> None:
    line = "request method=POST path=/api/v1/api-keys status=201 key_id=key_abc123 prefix=hk_abcd [redacted]"
    assert leaks_in(line) == []
