"""The conversation with @BotFather that makes a bot, as an explicit state machine.

BotFather is a chat, not an API: Hutch sends what a person would type and reads each answer, which it
recognises by the phrases BotFather uses. Each stage accepts a few known answers and moves on; anything
else, or silence past the step's timeout, ends the conversation with an error saying whether the account
is the problem (try another account) or the request is (no free username).

    START ─/newbot→ ASKED_NAME ─name→ ASKED_USERNAME ─username→ CREATED ─profile steps→ DONE
                                          ↑ taken / invalid: next username ┘
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class BotFatherTransport(Protocol):
    """One account's private chat with @BotFather."""

    async def send(self, text: str) -> None: ...

    async def send_photo(self, data: bytes, filename: str) -> None: ...

    async def reply(self, wait: float) -> str:
        """BotFather's next message; raises TimeoutError when none comes in time."""
        ...


class Answer(StrEnum):
    ASK_NAME = "ask_name"
    ASK_USERNAME = "ask_username"
    CREATED = "created"
    USERNAME_TAKEN = "username_taken"
    USERNAME_INVALID = "username_invalid"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    BOT_LIMIT = "bot_limit"
    RESTRICTED = "restricted"
    CHOOSE_BOT = "choose_bot"
    ASK_VALUE = "ask_value"  # "OK. Send me the new description / 'About' text / profile photo"
    SUCCESS = "success"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


# Checked in order: the first phrase found names the answer (case-insensitive).
PHRASES: list[tuple[Answer, tuple[str, ...]]] = [
    (Answer.TOO_MANY_ATTEMPTS, ("too many attempts",)),
    (Answer.BOT_LIMIT, ("more than 20 bots", "you have too many bots", "can't create more bots")),
    (
        Answer.RESTRICTED,
        ("account is restricted", "account is limited", "your account was limited", "you can't create bots"),
    ),
    (Answer.CREATED, ("congratulations on your new bot",)),
    (Answer.USERNAME_TAKEN, ("username is already taken",)),
    (Answer.USERNAME_INVALID, ("username is invalid",)),
    (Answer.ASK_USERNAME, ("choose a username for your bot",)),
    (Answer.ASK_NAME, ("how are we going to call it", "choose a name for your bot")),
    (Answer.CHOOSE_BOT, ("choose a bot to",)),
    (Answer.ASK_VALUE, ("send me the new",)),
    (Answer.SUCCESS, ("success!",)),
    (Answer.CANCELLED, ("has been cancelled", "no active command to cancel")),
]
TOKEN = re.compile(r"(?<![\w-])(\d{5,16}:[A-Za-z0-9_-]{30,64})(?![\w-])")  # it may end in "-"
LINK = re.compile(r"t\.me/([A-Za-z][A-Za-z0-9_]{3,31})", re.IGNORECASE)
WAIT = re.compile(r"try again in (\d+) seconds?", re.IGNORECASE)


def classify(text: str) -> Answer:
    lowered = text.lower()
    for answer, phrases in PHRASES:
        if any(phrase in lowered for phrase in phrases):
            return answer
    return Answer.UNKNOWN


class BotFatherError(Exception):
    """The conversation ended without a bot; ``str(error)`` says why, without secrets."""


class AccountProblem(BotFatherError):
    """This account cannot make the bot now; another account may."""


class NoAnswer(AccountProblem):
    pass


class UnexpectedAnswer(AccountProblem):
    pass


class TooManyAttempts(AccountProblem):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"BotFather asked to wait {seconds} seconds")
        self.seconds = seconds


class AccountRestricted(AccountProblem):
    """Telegram restricted the account, or it holds as many bots as BotFather allows."""


class UsernamesExhausted(BotFatherError):
    """Every generated username was taken or refused: another account would meet the same answers."""


class Stage(StrEnum):
    START = "start"
    ASKED_NAME = "asked_name"
    ASKED_USERNAME = "asked_username"
    CREATED = "created"


@dataclass(frozen=True)
class Profile:
    """What the new bot shows: the description (before the first message), the about text, the photo."""

    description: str
    about: str
    photo: bytes | None = None  # PNG


@dataclass
class CreatedBot:
    token: str
    username: str
    tried: list[str] = field(default_factory=list)  # usernames refused before this one
    notes: list[str] = field(default_factory=list)  # profile steps that did not take


class NewBotConversation:
    """Runs /newbot to the token, then the profile steps; one instance per attempt with one account."""

    def __init__(self, transport: BotFatherTransport, *, step_timeout: float) -> None:
        self.transport = transport
        self.step_timeout = step_timeout
        self.stage = Stage.START

    async def _ask(self, text: str, step: str) -> tuple[Answer, str]:
        await self.transport.send(text)
        try:
            reply = await self.transport.reply(self.step_timeout)
        except TimeoutError:
            raise NoAnswer(f"BotFather did not answer {step} within {self.step_timeout:g} s") from None
        return classify(reply), reply

    @staticmethod
    def _refuse(answer: Answer, reply: str, step: str) -> BotFatherError:
        """The error for an answer the current stage does not expect."""
        if answer is Answer.TOO_MANY_ATTEMPTS:
            wait = WAIT.search(reply)
            return TooManyAttempts(int(wait.group(1)) if wait else 3600)
        if answer is Answer.RESTRICTED:
            return AccountRestricted("Telegram restricted this account: " + reply[:200])
        if answer is Answer.BOT_LIMIT:
            return AccountRestricted("the account has as many bots as BotFather allows")
        return UnexpectedAnswer(f"unexpected answer {step}: {reply[:200]!r}")

    async def create(self, name: str, usernames: Sequence[str], profile: Profile | None = None) -> CreatedBot:
        # Whatever an interrupted attempt left open in this chat is closed first.
        await self._ask("/cancel", "to /cancel")
        answer, reply = await self._ask("/newbot", "to /newbot")
        if answer is not Answer.ASK_NAME:
            raise self._refuse(answer, reply, "to /newbot")
        self.stage = Stage.ASKED_NAME
        answer, reply = await self._ask(name, "to the name")
        if answer is not Answer.ASK_USERNAME:
            raise self._refuse(answer, reply, "to the name")
        self.stage = Stage.ASKED_USERNAME
        bot = await self._choose_username(usernames)
        self.stage = Stage.CREATED
        if profile is not None:
            await self._set_profile(bot, profile)
        return bot

    async def _choose_username(self, usernames: Sequence[str]) -> CreatedBot:
        tried: list[str] = []
        for username in usernames:
            answer, reply = await self._ask(username, "to the username")
            if answer in (Answer.USERNAME_TAKEN, Answer.USERNAME_INVALID):
                tried.append(username)
                continue
            if answer is not Answer.CREATED:
                raise self._refuse(answer, reply, "to the username")
            token = TOKEN.search(reply)
            if token is None:
                raise UnexpectedAnswer("BotFather confirmed the bot but its answer held no token")
            link = LINK.search(reply)
            return CreatedBot(token.group(1), link.group(1) if link else username, tried)
        await self._ask("/cancel", "to /cancel")
        raise UsernamesExhausted(
            f"Telegram refused every username tried ({', '.join(tried)}); choose another bot name."
        )

    async def _set_profile(self, bot: CreatedBot, profile: Profile) -> None:
        """Description, about text and photo: the bot works without them, so a failure is only noted."""
        steps: list[tuple[str, str | bytes]] = [
            ("/setdescription", profile.description),
            ("/setabouttext", profile.about),
        ]
        if profile.photo is not None:
            steps.append(("/setuserpic", profile.photo))
        for command, value in steps:
            try:
                await self._profile_step(bot.username, command, value)
            except BotFatherError as error:
                bot.notes.append(f"{command}: {error}")
                if isinstance(error, TooManyAttempts | NoAnswer):
                    return  # the rest would meet the same answer

    async def _profile_step(self, username: str, command: str, value: str | bytes) -> None:
        step = f"to {command}"
        answer, reply = await self._ask(command, step)
        if answer is not Answer.CHOOSE_BOT:
            raise self._refuse(answer, reply, step)
        answer, reply = await self._ask(f"@{username}", step)
        if answer is not Answer.ASK_VALUE:
            raise self._refuse(answer, reply, step)
        if isinstance(value, bytes):
            await self.transport.send_photo(value, "avatar.png")
            try:
                reply = await self.transport.reply(self.step_timeout)
            except TimeoutError:
                raise NoAnswer(f"BotFather did not answer the photo within {self.step_timeout:g} s") from None
            answer = classify(reply)
        else:
            answer, reply = await self._ask(value, step)
        if answer is not Answer.SUCCESS:
            raise self._refuse(answer, reply, step)
