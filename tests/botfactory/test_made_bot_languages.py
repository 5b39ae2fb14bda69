"""A bot the factory makes shows its menu and descriptions in its org's language, and in each language Hutch
speaks to the people whose Telegram speaks it."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from hutch.botfactory.models import BotRequest
from tests.botfactory import test_botfactory
from tests.botfactory.test_botfactory import Factory
from tests.fakes.telegram import FakeBot

factory = test_botfactory.factory  # the fixture: a deployment with a fake BotFather
DEFAULT = '{"type": "default"}'


async def _make_a_bot(f: Factory, language: str) -> tuple[dict[str, object], FakeBot]:
    chosen = await f.client.patch("/api/v1/org", json={"language": language}, headers=f.customer.headers)
    assert chosen.status_code == 200, chosen.text
    await f.add_account("+15550000001")
    made = await f.request_bot("Ada Helper")
    [father_made] = f.father.all_bots()
    return made, f.telegram.bots[father_made.token]


async def test_a_made_bot_speaks_its_orgs_language_and_each_users_own(factory: Factory) -> None:
    f = factory
    made, bot = await _make_a_bot(f, "es")
    assert made["status"] == "succeeded"
    menu = {c["command"]: c["description"] for c in bot.commands[(DEFAULT, "")]}
    assert menu["help"] == "Lo que puedo hacer" and menu["reset"] == "Empezar una conversación nueva"
    assert bot.description.startswith("¡Hola! Soy Ada, un asistente de IA.")
    assert bot.short_description == "Ada: un asistente de IA."

    english, spanish, german = bot.shown_to("en-US"), bot.shown_to("es"), bot.shown_to("de")
    assert {c["command"]: c["description"] for c in english.commands}["help"] == "What I can do"
    assert english.description.startswith("Hello! I am Ada, an AI assistant.")
    assert english.short_description == "Ada: an AI assistant."
    assert german == spanish and spanish.commands == bot.commands[(DEFAULT, "")]
    # The name the customer chose, given by BotFather, stays: it is in no language.
    assert english.name == spanish.name == "Ada Helper" and not bot.names
    calls = Counter(c.method for c in f.telegram.recorded(token=bot.token) if c.method.startswith("setMy"))
    assert calls == {"setMyCommands": 3, "setMyDescription": 3, "setMyShortDescription": 3}


# PTB 22 warns that ``retry_after`` becomes a timedelta in its next major version.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_telegram_refusing_the_menu_does_not_undo_the_bot(factory: Factory) -> None:
    f = factory
    f.telegram.fail("setMyCommands", 429, "Too Many Requests: retry after 60", retry_after=60)
    made, bot = await _make_a_bot(f, "en")
    assert made["status"] == "succeeded" and made["verification"]
    request = (await f.session.scalars(select(BotRequest))).one()
    assert "the menu and descriptions were not set" in (request.notes or "")
    assert bot.webhook is not None  # connected, and working
    assert (await f.tell_bot(str(made["channel_id"]), "Hello"))[0]
