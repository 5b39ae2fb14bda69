"""A language the operator adds with a .po file gets its own Telegram menu, under the code Telegram knows."""

from __future__ import annotations

from pathlib import Path

from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.telegram.platform import platform_commands
from hutch.channels.telegram.profile import set_menu, telegram_languages
from hutch.settings import Settings
from tests.fakes.telegram import FakeTelegramServer

TOKEN = "555000333:AAE_a_bot_for_the_operators_languages"
HEADER = """msgid ""
msgstr ""
"Language: {language}\\n"
"Content-Type: text/plain; charset=utf-8\\n"

"""
FRENCH = 'msgid "What I can do"\nmsgstr "Ce que je sais faire"\n'
BRAZILIAN = 'msgid "What I can do"\nmsgstr "O que eu sei fazer"\n'


def _catalogue(root: Path, language: str, entries: str = "") -> None:
    folder = root / language / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text(HEADER.format(language=language) + entries, encoding="utf-8")


async def test_an_operators_languages_get_menus_under_telegrams_two_letter_codes(
    tmp_path: Path, settings: Settings, telegram_server: FakeTelegramServer
) -> None:
    _catalogue(tmp_path, "fr", FRENCH)
    _catalogue(tmp_path, "pt_BR", BRAZILIAN)
    _catalogue(tmp_path, "pt_PT")
    _catalogue(tmp_path, "fil")  # Filipino: no two-letter code, so its people get the menu for everyone
    configured = settings.model_copy(update={"locales_dir": tmp_path})
    assert telegram_languages(configured) == [("en", "en"), ("es", "es"), ("fr", "fr"), ("pt", "pt_BR")]

    telegram_server.reset()
    bot = telegram_server.add_bot(TOKEN, "operator_languages_bot")
    gateway = TelegramGateway(telegram_server.base_url)
    await set_menu(gateway, configured, TOKEN, None, platform_commands)
    await gateway.close()

    def help_for(language_code: str) -> str:
        return {c["command"]: c["description"] for c in bot.shown_to(language_code).commands}["help"]

    assert {code for _, code in bot.commands} == {"", "en", "es", "fr", "pt"}
    assert help_for("fr-CA") == "Ce que je sais faire" and help_for("pt-br") == "O que eu sei fazer"
    assert help_for("es") == "Lo que puedo hacer" and help_for("fil") == help_for("ja") == "What I can do"

    _catalogue(tmp_path / "more", "pt")  # the language's own catalogue speaks for it rather than a region's
    _catalogue(tmp_path / "more", "pt_BR", BRAZILIAN)
    more = settings.model_copy(update={"locales_dir": tmp_path / "more"})
    assert telegram_languages(more)[-1] == ("pt", "pt")
