"""What a bot shows about itself before anyone writes: its commands menu, name and descriptions.

Telegram keeps one of each for everyone and, optionally, one per language of its users' apps (the
methods' ``language_code``, a two-letter ISO 639-1 code): a user sees the one in their app's language, else
the one for everyone. So a bot is given the texts for everyone in its org's language (the deployment's
default for the platform bot), and then a variant in each language Hutch speaks (docs/languages.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.telegram.usernames import display_name
from hutch.i18n import N_, _, languages, use_language
from hutch.settings import Settings

T = TypeVar("T")
EVERYONE = ""  # Telegram's language_code for what users of every other language see

# The menu of an agent's own bot (what jobs.HELP describes), translated where it is set: bot_commands().
BOT_COMMANDS = [
    ("start", N_("Start talking")),
    ("help", N_("What I can do")),
    ("reset", N_("Start a new conversation")),
    ("human", N_("Ask for a person from the team")),
    ("balance", N_("Prepaid credits and time left")),
]


def bot_commands() -> list[tuple[str, str]]:
    """The menu of an agent's own bot, in the language of the moment."""
    return [(command, _(description)) for command, description in BOT_COMMANDS]


def bot_profile(agent_name: str) -> tuple[str, str, str]:
    """A new bot's (name, description, short description), from its agent's name, in the language of the
    moment (Telegram's limits: 64, 512 and 120 characters)."""
    name = display_name(agent_name)
    description = _("Hello! I am {name}, an AI assistant. Write me a message to start.").format(name=name)
    return name, description[:512], _("{name}: an AI assistant.").format(name=name)[:120]


def telegram_languages(settings: Settings) -> list[tuple[str, str]]:
    """``(language_code, language)`` for each language Hutch speaks that Telegram can name: a catalogue
    for a region (``pt_BR``) speaks for its language (``pt``) unless there is one for the language itself
    (else the first region's, by name); a language without a two-letter code (``fil``) gets the texts for
    everyone."""
    chosen: dict[str, str] = {}
    for language in languages(settings):
        code = language.partition("_")[0]
        if len(code) == 2 and code.isascii() and code.isalpha() and (code not in chosen or language == code):
            chosen[code] = language
    return list(chosen.items())


def in_every_language(settings: Settings, default: str | None, say: Callable[[], T]) -> list[tuple[str, T]]:
    """What ``say()`` says for everyone (:data:`EVERYONE`, in ``default``: an org's language, or None for
    the deployment's), then in each language of :func:`telegram_languages`, keyed by its language_code."""
    with use_language(settings, default):
        said = [(EVERYONE, say())]
    for code, language in telegram_languages(settings):
        with use_language(settings, language):
            said.append((code, say()))
    return said


async def set_menu(
    gateway: TelegramGateway,
    settings: Settings,
    token: str,
    default: str | None,
    commands: Callable[[], list[tuple[str, str]]],
) -> None:
    """The bot's menu for everyone (in ``default``) and in each language: one call per language, each
    replacing that language's whole menu, so doing it again changes nothing."""
    for code, menu in in_every_language(settings, default, commands):
        await gateway.set_commands(token, menu, language_code=code)


async def dress_bot(
    gateway: TelegramGateway,
    settings: Settings,
    token: str,
    agent_name: str,
    default: str | None,
    *,
    name: bool = True,
    photo: bytes | None = None,
) -> None:
    """An agent's own bot's menu and descriptions, for everyone (in ``default``, its org's language) and in
    each language; its name (the agent's, in no language) and profile photo (a JPEG) once, when asked.
    Telegram's errors are the caller's to weigh."""
    await set_menu(gateway, settings, token, default, bot_commands)
    for code, (shown, description, short) in in_every_language(
        settings, default, lambda: bot_profile(agent_name)
    ):
        await gateway.set_profile(
            token,
            name=shown if name and code == EVERYONE else None,
            description=description,
            short_description=short,
            language_code=code,
        )
    if photo is not None:
        await gateway.set_photo(token, photo)
