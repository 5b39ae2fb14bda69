"""What an agent's own bot shows about itself before anyone writes: its commands menu, name and
descriptions, in the language of the moment (the org's, where they are set: docs/languages.md)."""

from __future__ import annotations

from hutch.channels.telegram.usernames import display_name
from hutch.i18n import N_, _

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
