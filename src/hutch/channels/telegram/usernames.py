"""Bot usernames and display names that Telegram accepts, made from the company's and the agent's names.

Telegram's rules for a bot's username: 5 to 32 characters, Latin letters, digits and underscores, starting
with a letter and ending in "bot". Names in other scripts lose their accents or fall back to a neutral
word; when a name is taken, the next candidate adds a few random digits.
"""

from __future__ import annotations

import random
import re
import unicodedata

MIN_LENGTH, MAX_LENGTH = 5, 32
SUFFIX = "_bot"
FALLBACK = "assistant"
MAX_DISPLAY_NAME = 64  # BotFather's limit for a bot's name
VALID_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,28}[Bb][Oo][Tt]$")


def is_valid_username(username: str) -> bool:
    return MIN_LENGTH <= len(username) <= MAX_LENGTH and bool(VALID_USERNAME.match(username))


def slugify(name: str) -> str:
    """ "Café Ötzi & Co." → "cafe_otzi_co": ASCII letters and digits joined by single underscores."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_only.lower())
    slug = "_".join(words)
    slug = slug.lstrip("0123456789_")  # a username starts with a letter
    if slug.endswith("bot"):  # "HelpBot" → "help", so the suffix is not doubled
        slug = slug[: -len("bot")].rstrip("_")
    return slug


def _fit(stem: str, tail: str = "") -> str:
    room = MAX_LENGTH - len(SUFFIX) - len(tail)
    stem = stem[:room].rstrip("_") or FALLBACK[:room]
    return f"{stem}{tail}{SUFFIX}"


def candidates(
    agent_name: str, company: str | None, *, count: int = 8, rng: random.Random | None = None
) -> list[str]:
    """Distinct valid usernames to try in order: the plain names first, then with random digits."""
    rng = rng or random.Random()  # noqa: S311 - variety, not secrecy
    agent, org = slugify(agent_name), slugify(company or "")
    stems = [s for s in (f"{org}_{agent}" if org and agent and org != agent else "", agent, org) if s]
    stems = stems or [FALLBACK]
    found: list[str] = []
    for stem in stems:
        name = _fit(stem)
        if name not in found:
            found.append(name)
    while len(found) < count:
        name = _fit(stems[len(found) % len(stems)], f"_{rng.randint(100, 99_999)}")
        if name not in found:
            found.append(name)
    return found[:count]


def display_name(name: str) -> str:
    """The bot's shown name: printable, single-spaced, at most 64 characters, never empty."""
    printable = "".join(c for c in name if unicodedata.category(c)[0] not in ("C",))
    single = " ".join(printable.split())
    return single[:MAX_DISPLAY_NAME].strip() or "Assistant"
