"""A fake @BotFather: answers like the real one, per creator account, and makes real fake bots.

Each account gets a script (rate limited, restricted, at the 20-bot limit, silent, healthy or banned for
the health check). Bots it creates are registered in the fake Telegram Bot API server, so the token it
hands out passes ``getMe`` and ``setWebhook`` like a real one. Every message each way is kept in the
account's transcript.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from hutch.botfactory.botfather import AccountProblem
from hutch.botfactory.gateway import AccountCredentials, HealthReport
from hutch.botfactory.models import AccountStatus
from tests.fakes.telegram import FakeTelegramServer

USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,28}bot$", re.IGNORECASE)
ASK_NAME = "Alright, a new bot. How are we going to call it? Please choose a name for your bot."
ASK_USERNAME = (
    "Good. Now let's choose a username for your bot. It must end in `bot`. "
    "Like this, for example: TetrisBot or tetris_bot."
)
TAKEN = "Sorry, this username is already taken. Please try something different."
INVALID = "Sorry, this username is invalid."
TOO_MANY = "Sorry, too many attempts. Please try again in {seconds} seconds."
RESTRICTED = "Sorry, your account is restricted from creating new bots for spam reasons."
BOT_LIMIT = "That I cannot do. You come to me asking for more than 20 bots. But you already have 20 bots!"
CANCELLED = "The command /newbot has been cancelled. Anything else for me?"
NOTHING_TO_CANCEL = "No active command to cancel. I wasn't doing anything anyway. Zzzzz..."
CHOOSE = "Choose a bot to change {what}."
ASK_VALUE = {
    "/setdescription": "OK. Send me the new description for the bot. People will see this description "
    "when they open a chat with your bot, in a block titled 'What can this bot do?'.",
    "/setabouttext": "OK. Send me the new 'About' text. People will see this text on the bot's profile page.",
    "/setuserpic": "OK. Send me the new profile photo for the bot.",
}
DONE = {
    "/setdescription": "Success! Description updated. /help",
    "/setabouttext": "Success! About section updated. /help",
    "/setuserpic": "Success! Profile photo updated. /help",
}
WHAT = {"/setdescription": "description", "/setabouttext": "about section", "/setuserpic": "profile photo"}


@dataclass
class MadeBot:
    token: str
    username: str
    name: str
    description: str | None = None
    about: str | None = None
    photo: bytes | None = None


@dataclass
class AccountScript:
    phone: str
    wait_seconds: int | None = None  # "too many attempts" at /newbot
    restricted: bool = False
    at_bot_limit: bool = False
    silent_after: int | None = None  # answers this many messages, then nothing
    logged_out: bool = False  # the session no longer works
    health: HealthReport = field(default_factory=lambda: HealthReport(AccountStatus.ACTIVE))
    unexpected: str | None = None  # an answer BotFather has never given, at /newbot
    transcript: list[tuple[str, str]] = field(default_factory=list)  # ("me" | "botfather", text)
    bots: list[MadeBot] = field(default_factory=list)
    conversations: int = 0


class FakeBotFather:
    def __init__(self, telegram: FakeTelegramServer | None = None) -> None:
        self.telegram = telegram
        self.accounts: dict[str, AccountScript] = {}
        self.taken: set[str] = set()  # lowercase usernames of bots that exist anywhere
        self.invalid: set[str] = set()  # usernames refused as invalid whatever their shape

    def account(self, phone: str, **script: object) -> AccountScript:
        self.accounts[phone] = AccountScript(phone, **script)  # type: ignore[arg-type]
        return self.accounts[phone]

    def script(self, phone: str) -> AccountScript:
        return self.accounts.setdefault(phone, AccountScript(phone))

    def all_bots(self) -> list[MadeBot]:
        return [bot for script in self.accounts.values() for bot in script.bots]

    def clients(self) -> FakeCreatorClients:
        return FakeCreatorClients(self)


class FakeChat:
    """One account's chat with the fake BotFather (the BotFatherTransport the factory uses)."""

    def __init__(self, father: FakeBotFather, script: AccountScript) -> None:
        self.father = father
        self.script = script
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.state = "idle"
        self.bot: MadeBot | None = None  # the bot a /set... command is about
        self.new_name = ""
        self.received = 0

    def _answer(self, text: str) -> None:
        self.received += 1
        if self.script.silent_after is not None and self.received > self.script.silent_after:
            return
        self.script.transcript.append(("botfather", text))
        self.replies.put_nowait(text)

    async def send(self, text: str) -> None:
        self.script.transcript.append(("me", text))
        self._answer(self._respond(text))

    async def send_photo(self, data: bytes, filename: str) -> None:
        self.script.transcript.append(("me", f"<photo {filename} {len(data)} bytes>"))
        if self.state == "value:/setuserpic" and self.bot is not None:
            self.bot.photo, self.state = data, "idle"
            self._answer(DONE["/setuserpic"])
        else:
            self._answer("Sorry, I don't know what to do with this photo.")

    async def reply(self, wait: float) -> str:
        return await asyncio.wait_for(self.replies.get(), wait)

    def _respond(self, text: str) -> str:
        script = self.script
        if text == "/cancel":
            was, self.state = self.state, "idle"
            return NOTHING_TO_CANCEL if was == "idle" else CANCELLED
        if text == "/newbot":
            if script.unexpected is not None:
                return script.unexpected
            if script.restricted:
                return RESTRICTED
            if script.at_bot_limit:
                return BOT_LIMIT
            if script.wait_seconds is not None:
                return TOO_MANY.format(seconds=script.wait_seconds)
            self.state = "name"
            return ASK_NAME
        if text in ASK_VALUE:
            self.state = f"choose:{text}"
            return CHOOSE.format(what=WHAT[text])
        if self.state == "name":
            self.new_name, self.state = text, "username"
            return ASK_USERNAME
        if self.state == "username":
            return self._create(text)
        if self.state.startswith("choose:"):
            command = self.state.removeprefix("choose:")
            self.bot = next((b for b in script.bots if f"@{b.username}" == text), None)
            if self.bot is None:
                self.state = "idle"
                return "Invalid bot selected."
            self.state = f"value:{command}"
            return ASK_VALUE[command]
        if self.state.startswith("value:") and self.bot is not None:
            command, self.state = self.state.removeprefix("value:"), "idle"
            if command == "/setdescription":
                self.bot.description = text
            elif command == "/setabouttext":
                self.bot.about = text
            else:
                return "Please send me the photo."
            return DONE[command]
        return "Unrecognized command. Say what?"

    def _create(self, username: str) -> str:
        if not USERNAME.match(username) or username in self.father.invalid:
            return INVALID
        if username.lower() in self.father.taken:
            return TAKEN
        token = f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(26)[:33]}"
        bot = MadeBot(token, username, self.new_name)
        self.script.bots.append(bot)
        self.father.taken.add(username.lower())
        if self.father.telegram is not None:
            self.father.telegram.add_bot(token, username, self.new_name)
        self.state = "idle"
        return (
            f"Done! Congratulations on your new bot. You will find it at t.me/{username}. You can now add a "
            "description, about section and profile picture for your bot, see /help for a list of commands."
            f"\n\nUse this token to access the HTTP API:\n{token}\nKeep your token secure and store it "
            "safely, it can be used by anyone to control your bot."
        )


def fake_session(seed: int = 0) -> str:
    """A well-formed Telethon StringSession (data centre 2, a made-up key): what a logged-in account saves."""
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes((seed + i) % 256 for i in range(256)))
    return str(session.save())


class FakeCreatorClients:
    """The CreatorClients the worker uses, answered by the fake BotFather."""

    def __init__(self, father: FakeBotFather) -> None:
        self.father = father
        self.checked: list[str] = []

    @asynccontextmanager
    async def botfather(self, account: AccountCredentials) -> AsyncIterator[FakeChat]:
        script = self.father.script(account.phone)
        if script.logged_out:
            raise AccountProblem("the account's session is logged out; add the account again")
        script.conversations += 1
        yield FakeChat(self.father, script)

    async def check(self, account: AccountCredentials) -> HealthReport:
        self.checked.append(account.phone)
        return self.father.script(account.phone).health
