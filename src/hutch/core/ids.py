"""Public ids: a short prefix naming the kind, then 20 random characters (``usr_...``, ``org_...``)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


_LENGTH = 20
_SPACE = len(_ALPHABET) ** _LENGTH


def new_id(prefix: str) -> str:
    # One random number in base 36 rather than twenty draws: ids are made on every message.
    number = secrets.randbelow(_SPACE)
    chars = []
    for _ in range(_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)
