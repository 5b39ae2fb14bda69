"""Who an end user is, as their channel knows them: a name to show in the inbox, never more than needed."""

from __future__ import annotations

import re
from dataclasses import dataclass

LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class EndUserProfile:
    """What a channel tells about the person behind a message (Telegram's name and username, say)."""

    display_name: str
    username: str | None = None
    language: str | None = None  # the language their app is set to (Telegram's ``language_code``)


def masked_number(number: str) -> str:
    """``+15551234567`` → ``+1555•••4567``: enough to tell people apart, not to call them."""
    if len(number) <= 7:
        return number[:2] + "•" * max(len(number) - 2, 0)
    return number[:5] + "•••" + number[-4:]


def default_profile(channel: str, external_id: str) -> EndUserProfile:
    """The name shown when the channel told nothing more, from the conversation's ``end_user``."""
    _, _, address = external_id.partition(":")
    address = address or external_id
    if channel == "whatsapp":
        return EndUserProfile(f"WhatsApp {masked_number(address)}")
    if channel == "webchat":
        return EndUserProfile(f"Visitor {address[-6:]}")
    if channel == "telegram":
        return EndUserProfile(f"Telegram {address}")
    if external_id.startswith("user:"):
        return EndUserProfile("Dashboard member")
    if external_id.startswith("key:"):
        return EndUserProfile("API key")
    return EndUserProfile(external_id[:200])


def language_code(value: object) -> str | None:
    """A language tag a channel sent (``es``, ``pt-br``), or None when it is not one."""
    return value if isinstance(value, str) and LANGUAGE_TAG.match(value) else None


def telegram_profile(sender: dict[str, object]) -> EndUserProfile | None:
    """A Telegram sender's ``first_name last_name``, ``@username`` and app language."""
    name = " ".join(str(sender[k]) for k in ("first_name", "last_name") if sender.get(k)).strip()
    username = sender.get("username")
    if not name and not username:
        return None
    language = language_code(sender.get("language_code"))
    return EndUserProfile(name or f"@{username}", str(username) if username else None, language)
