"""Password rules: 8+ characters and not one of the passwords attackers try first."""

from __future__ import annotations

from hutch.i18n import _

_COMMON = frozenset(
    (
        "password",
        "password1",
        "password12",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "admin123",
        "welcome1",
        "letmein1",
        "abc12345",
        "11111111",
        "00000000",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "monkey123",
        "dragon123",
        "trustno1",
        "passw0rd",
        "p@ssw0rd",
        "changeme",
        "superman",
        "michael1",
        "qwerty12",
        "1q2w3e4r",
        "1qaz2wsx",
        "zaq12wsx",
        "asdfghjk",
        "starwars",
        "whatever",
    )
)


def strong_password(password: str) -> str:
    """Pydantic validator: the password itself when acceptable, else a ValueError saying why."""
    if len(password) < 8:
        raise ValueError(_("password must be at least 8 characters"))
    if password.lower() in _COMMON:
        raise ValueError(_("this password is too common; choose a less guessable one"))
    return password
