"""The BotFather conversation and username generation, against the fake BotFather's chat."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hutch.botfactory.botfather import (
    TOKEN,
    AccountRestricted,
    Answer,
    NewBotConversation,
    NoAnswer,
    Profile,
    TooManyAttempts,
    UnexpectedAnswer,
    UsernamesExhausted,
    classify,
)
from hutch.channels.telegram.usernames import candidates, display_name, is_valid_username, slugify
from tests.fakes.botfather import FakeBotFather, FakeChat

STEP = 0.2


def chat(father: FakeBotFather, phone: str = "+15550000001", **script: object) -> FakeChat:
    return FakeChat(father, father.account(phone, **script))


async def test_a_bot_is_made_and_dressed() -> None:
    father = FakeBotFather()
    transport = chat(father)
    profile = Profile(description="Hello, I am Ada.", about="Ada: an AI assistant.", photo=b"\x89PNG fake")
    bot = await NewBotConversation(transport, step_timeout=STEP).create(
        "Ada", ["acme_ada_bot", "ada_bot"], profile
    )
    [made] = father.all_bots()
    assert (bot.token, bot.username, bot.tried, bot.notes) == (made.token, "acme_ada_bot", [], [])
    assert made.name == "Ada" and made.description == "Hello, I am Ada." and made.about == profile.about
    assert made.photo == profile.photo
    sent = [text for who, text in transport.script.transcript if who == "me"]
    assert sent[:4] == ["/cancel", "/newbot", "Ada", "acme_ada_bot"]
    assert sent[4:] == [
        "/setdescription", "@acme_ada_bot", "Hello, I am Ada.",
        "/setabouttext", "@acme_ada_bot", "Ada: an AI assistant.",
        "/setuserpic", "@acme_ada_bot", "<photo avatar.png 9 bytes>",
    ]  # fmt: skip


async def test_taken_and_invalid_usernames_move_on_to_the_next() -> None:
    father = FakeBotFather()
    father.taken.add("acme_ada_bot")
    father.invalid.add("ada_bot")
    bot = await NewBotConversation(chat(father), step_timeout=STEP).create(
        "Ada", ["acme_ada_bot", "ada_bot", "not-valid_bot", "ada_123_bot"]
    )
    assert bot.username == "ada_123_bot"
    assert bot.tried == ["acme_ada_bot", "ada_bot", "not-valid_bot"]


async def test_when_every_username_is_refused_the_conversation_is_cancelled() -> None:
    father = FakeBotFather()
    father.taken |= {"a_one_bot", "a_two_bot"}
    transport = chat(father)
    with pytest.raises(UsernamesExhausted, match="a_one_bot, a_two_bot"):
        await NewBotConversation(transport, step_timeout=STEP).create("A", ["a_one_bot", "a_two_bot"])
    assert transport.script.transcript[-2:] == [
        ("me", "/cancel"),
        ("botfather", "The command /newbot has been cancelled. Anything else for me?"),
    ]
    assert father.all_bots() == []


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        ({"wait_seconds": 42}, TooManyAttempts, "wait 42 seconds"),
        ({"restricted": True}, AccountRestricted, "restricted"),
        ({"at_bot_limit": True}, AccountRestricted, "as many bots as BotFather allows"),
        ({"silent_after": 1}, NoAnswer, "did not answer to /newbot"),
        ({"unexpected": "Hmm, the moon is made of cheese."}, UnexpectedAnswer, "moon"),
    ],
)
async def test_each_refusal_becomes_its_own_error(
    script: dict[str, object], error: type[Exception], message: str
) -> None:
    father = FakeBotFather()
    with pytest.raises(error, match=message) as raised:
        await NewBotConversation(chat(father, **script), step_timeout=STEP).create("Ada", ["ada_bot"])
    if isinstance(raised.value, TooManyAttempts):
        assert raised.value.seconds == 42
    assert father.all_bots() == []


async def test_a_rate_limit_at_the_username_step_is_an_account_problem() -> None:
    father = FakeBotFather()
    transport = chat(father)
    conversation = NewBotConversation(transport, step_timeout=STEP)
    transport.script.wait_seconds = None

    async def limited_send(text: str) -> None:  # BotFather's limit can strike mid-conversation
        transport.script.transcript.append(("me", text))
        answer = "Sorry, too many attempts. Please try again in 7 seconds." if text == "ada_bot" else None
        transport._answer(answer or transport._respond(text))

    transport.send = limited_send  # type: ignore[method-assign]
    with pytest.raises(TooManyAttempts) as raised:
        await conversation.create("Ada", ["ada_bot"])
    assert raised.value.seconds == 7


async def test_a_profile_step_that_fails_is_noted_and_the_bot_kept() -> None:
    father = FakeBotFather()
    transport = chat(father, silent_after=4)  # answers up to the bot's creation, then nothing
    bot = await NewBotConversation(transport, step_timeout=STEP).create(
        "Ada", ["ada_bot"], Profile("d", "a", None)
    )
    assert bot.username == "ada_bot" and len(father.all_bots()) == 1
    assert bot.notes and "/setdescription" in bot.notes[0] and "did not answer" in bot.notes[0]
    assert transport.script.transcript[-1] == ("me", "/setdescription")  # silence: the rest is skipped


def test_the_token_is_read_whatever_it_ends_with() -> None:
    for token in ("123456789:AAE" + "x" * 30 + "-", "123456789:AAE" + "_" * 31, "9876543210:" + "A-b_" * 9):
        reply = f"Done! Congratulations on your new bot.\nUse this token to access the API:\n{token}\nKeep"
        found = TOKEN.search(reply)
        assert found is not None and found.group(1) == token


def test_known_answers_are_recognised() -> None:
    assert classify("Sorry, too many attempts. Please try again in 8 seconds.") is Answer.TOO_MANY_ATTEMPTS
    assert (
        classify("Done! Congratulations on your new bot. You will find it at t.me/x_bot.") is Answer.CREATED
    )
    assert classify("Sorry, this username is already taken.") is Answer.USERNAME_TAKEN
    assert classify("Invalid bot selected.") is Answer.UNKNOWN


# --- usernames ----------------------------------------------------------------------------------------


@given(agent=st.text(max_size=120), company=st.one_of(st.none(), st.text(max_size=120)), seed=st.integers())
def test_every_generated_username_follows_telegrams_rules(agent: str, company: str | None, seed: int) -> None:
    names = candidates(agent, company, rng=random.Random(seed))
    assert len(names) == 8 and len(set(names)) == 8
    for name in names:
        assert is_valid_username(name), name
        assert 5 <= len(name) <= 32 and name.endswith("_bot") and name[0].isalpha() and name.isascii()


@given(st.text(max_size=300))
def test_display_names_are_printable_short_and_never_empty(name: str) -> None:
    shown = display_name(name)
    assert 1 <= len(shown) <= 64 and shown == shown.strip() and shown.isprintable()


def test_usernames_come_from_the_company_and_agent_names() -> None:
    names = candidates("Ada Helper", "Café Ötzi & Co.", rng=random.Random(1))
    assert names[:3] == ["cafe_otzi_co_ada_helper_bot", "ada_helper_bot", "cafe_otzi_co_bot"]
    assert slugify("SupportBot") == "support" and slugify("42 Ninjas") == "ninjas"
    assert candidates("Ассистент", None, rng=random.Random(1))[0] == "assistant_bot"
    assert len(candidates("x" * 80, "y" * 80)[0]) == 32
