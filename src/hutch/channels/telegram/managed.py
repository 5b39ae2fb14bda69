"""Managed Telegram bots: a customer's own bot, made in Telegram's own screen through the platform bot.

A platform bot with bot management enabled (in @BotFather's Mini App) can ask a user to create a bot that
it manages: a reply-keyboard button with ``request_managed_bot`` opens Telegram's creation screen, filled
in with a name and username; when the user confirms, the platform bot receives a ``managed_bot`` update
(and a ``managed_bot_created`` message in the chat) and fetches the new bot's token with
``getManagedBotToken``.

The dashboard hands an org member a one-time deep link ``t.me/<platform bot>?start=bot-<code>``. The
Telegram user who opens it first (within its lifetime) is shown the button; the bot *they* create is
connected to the agent like a hand-connected one, and they are its verified owner. A ``managed_bot`` update
from anyone else, or a second one for the same request, connects nothing.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from telegram import KeyboardButton, KeyboardButtonRequestManagedBot, ReplyKeyboardMarkup, ReplyKeyboardRemove
from telegram.error import TelegramError

from hutch.accounts.models import Org
from hutch.agents.avatars import as_jpeg
from hutch.agents.models import Agent, AgentAvatar
from hutch.agents.repository import AgentRepository
from hutch.channels.managed_repository import ManagedBotRepository
from hutch.channels.models import Channel, ChannelStatus, ManagedBotRequest, ManagedBotStatus
from hutch.channels.repository import ChannelRepository
from hutch.channels.telegram.gateway import (
    ALLOWED_UPDATES,
    BotIdentity,
    ManagedBotUnavailable,
    TelegramGateway,
)
from hutch.channels.telegram.platform import PlatformBotNotConfigured, platform_token
from hutch.channels.telegram.profile import dress_bot
from hutch.channels.telegram.service import TelegramChannels
from hutch.channels.telegram.usernames import candidates, display_name
from hutch.core.errors import Conflict, HutchError, NotFound, ServiceUnavailable
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.i18n import N_, _, use_language
from hutch.notifications.customers import NOTIFY_CHATS_JOB, in_each_language, owners, record
from hutch.notifications.service import queue_email
from hutch.settings import Settings

log = structlog.get_logger(__name__)

CODE_PREFIX = "bot-"  # a deep link's code for a managed bot, told apart from a personal link's
LINK_MINUTES = 30
PLATFORM_UPDATES = [*ALLOWED_UPDATES, "managed_bot"]  # what the platform bot's webhook asks Telegram for
BROKEN_NOTICE = "channel_broken"
IDENTITY_SECONDS = 300.0  # how long getMe's answer about the platform bot is trusted
BUTTON = N_("Create my bot")  # said in the chat's language (hutch.turns.language), like the rest
BAD_LINK = N_(
    "That link is not valid any more (it works once, for 30 minutes, for whoever opens it first). "
    "Ask your dashboard for a new one."
)


class ManagementNotEnabled(ServiceUnavailable):
    def __init__(self, username: str) -> None:
        super().__init__(
            f"@{username} cannot create bots for customers yet: the operator turns on bot management for "
            "it in @BotFather's Mini App (see docs/channels.md). Until then, connect a bot with its token."
        )


_identities: dict[str, tuple[BotIdentity, float]] = {}  # platform token → (getMe, when it was asked)


async def platform_identity(settings: Settings, gateway: TelegramGateway) -> BotIdentity:
    """The platform bot (``getMe``, asked every few minutes): its username and whether it manages bots."""
    token = platform_token(settings)
    if token is None:
        raise PlatformBotNotConfigured()
    cached = _identities.get(token)
    if cached is not None and time.monotonic() - cached[1] < IDENTITY_SECONDS:
        return cached[0]
    identity = await gateway.identify(token)
    _identities[token] = (identity, time.monotonic())
    return identity


def code_hash(code: str) -> str:
    return sha256_hex(f"telegram-managed:{code}")


def is_managed_code(argument: str) -> bool:
    return argument.startswith(CODE_PREFIX)


def greeting(agent_name: str) -> str:
    return _(
        "Hello! Let's give {agent} a Telegram bot of your own. Press “{button}” below: Telegram "
        "shows the bot's name and username (change them if you like), and once you confirm, I connect "
        "the new bot to {agent}."
    ).format(agent=agent_name, button=_(BUTTON))


class ManagedBots:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        secret_box: SecretBox,
        gateway: TelegramGateway,
        bots: TelegramChannels,
    ) -> None:
        self.uow = uow
        self.session = uow.session
        self.settings = settings
        self.secret_box = secret_box
        self.gateway = gateway
        self.bots = bots
        self.requests = ManagedBotRepository(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> ManagedBots:
        return cls(
            uow,
            resources.settings,
            resources.secret_box,
            resources.telegram,
            TelegramChannels.of(uow, resources),
        )

    def _token(self) -> str:
        token = platform_token(self.settings)
        if token is None:
            raise PlatformBotNotConfigured()
        return token

    async def platform(self) -> BotIdentity | None:
        """The platform bot (whether it can manage bots, its username); None without one, or while
        Telegram does not answer."""
        if platform_token(self.settings) is None:
            return None
        try:
            return await platform_identity(self.settings, self.gateway)
        except HutchError:
            return None

    async def _agent(self, principal: Principal, agent_id: str) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def start(self, principal: Principal, agent_id: str) -> tuple[ManagedBotRequest, str]:
        """A request for a managed bot for the agent, and its one-time deep link to the platform bot."""
        agent = await self._agent(principal, agent_id)
        self._token()  # 503 before anything else without a platform bot
        await self.bots.check_bot_quota(agent.org_id)
        identity = await platform_identity(self.settings, self.gateway)
        if not identity.can_manage_bots:
            raise ManagementNotEnabled(identity.username)
        if principal.user_id is None:
            raise Conflict("A managed bot is created by a person: sign in to the dashboard to ask for one.")
        org = await self.session.get(Org, agent.org_id)
        code = secrets.token_urlsafe(24)
        request = ManagedBotRequest(
            id=new_id("mbr"),
            org_id=agent.org_id,
            agent_id=agent.id,
            user_id=principal.user_id,
            status=ManagedBotStatus.WAITING,
            code_hash=code_hash(CODE_PREFIX + code),
            expires_at=datetime.now(UTC) + timedelta(minutes=LINK_MINUTES),
            button_id=secrets.randbelow(2**31 - 2) + 1,
            suggested_username=await self._free_username(agent.name, org.name if org else None),
        )
        self.requests.add(request)
        await self.session.flush()
        return request, f"https://t.me/{identity.username}?start={CODE_PREFIX}{code}"

    async def _free_username(self, agent_name: str, company: str | None) -> str:
        names = candidates(agent_name, company, count=8)
        taken = await self.requests.taken_usernames(names)
        return next((n for n in names if n.lower() not in taken), names[-1])

    async def open(self, code: str, chat_id: str, telegram_user_id: str) -> str:
        """The platform bot's answer to ``/start bot-<code>``: the request is now this user's, and the
        button follows (see :meth:`keyboard`); a spent, expired or unknown code gets :data:`BAD_LINK`."""
        request = await self.requests.waiting_by_code_for_update(code_hash(code), datetime.now(UTC))
        if request is None:
            return _(BAD_LINK)
        request.status, request.telegram_user_id, request.chat_id = (
            ManagedBotStatus.OPENED,
            telegram_user_id,
            chat_id,
        )
        agent = await self.session.get(Agent, request.agent_id)
        return greeting(agent.name if agent is not None else _("your assistant"))

    async def keyboard(self, chat_id: str, reply: str) -> ReplyKeyboardMarkup | None:
        """The button that opens Telegram's creation screen, under the greeting :meth:`open` wrote."""
        request = await self.requests.opened_in_chat(chat_id)
        agent = await self.session.get(Agent, request.agent_id) if request is not None else None
        if request is None or agent is None or reply != greeting(agent.name):
            return None
        ask = KeyboardButtonRequestManagedBot(
            request.button_id,
            suggested_name=display_name(agent.name),
            suggested_username=request.suggested_username,
        )
        return ReplyKeyboardMarkup(
            [[KeyboardButton(_(BUTTON), request_managed_bot=ask)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )

    async def created(self, creator: dict[str, Any], bot: dict[str, Any]) -> str:
        """Handle a ``managed_bot`` update: connect the bot to the agent of the request its creator opened;
        the outcome, for the event."""
        creator_id, bot_id = str(creator.get("id", "")), bot.get("id")
        if not isinstance(bot_id, int):
            return "ignored: no bot in the update"
        existing = await ChannelRepository(self.session).telegram_bot(str(bot_id))
        if existing is not None:
            if existing.managed and existing.status is ChannelStatus.ERROR:  # a new token for a broken bot
                await self.refresh(existing)
                return "reconnected with the bot's new token"
            return "ignored: the bot is connected already"
        request = await self.requests.opened_by_for_update(creator_id, datetime.now(UTC))
        if request is None:
            return "ignored: no request of this Telegram user is waiting"
        agent = await self.session.get(Agent, request.agent_id)
        if agent is None:
            return self._fail(request, "the agent was deleted")
        token = await self.gateway.managed_bot_token(self._token(), bot_id)
        try:
            channel = await self.bots.bind(agent, token, owner_id=creator_id, managed=True)
        except ServiceUnavailable:
            raise  # Telegram is down: the job retries, and the request still waits
        except HutchError as error:
            outcome = self._fail(request, str(error.detail))
            said = _("Your bot was created, but I could not connect it: {reason}").format(reason=error.detail)
            await self._tell(request, said)
            return outcome
        await self._dress(channel, agent, token)
        request.status, request.channel_id = ManagedBotStatus.CONNECTED, channel.id
        request.bot_username, request.finished_at = channel.username, datetime.now(UTC)
        await self._tell(
            request,
            _(
                "Done! @{bot} is {agent} on Telegram now: https://t.me/{bot}\n"
                "You are its owner; share the link with whoever should talk to it."
            ).format(bot=channel.username, agent=agent.name),
        )
        return "connected"

    def _fail(self, request: ManagedBotRequest, why: str) -> str:
        request.status, request.error, request.finished_at = ManagedBotStatus.FAILED, why, datetime.now(UTC)
        return f"failed: {why}"

    async def _tell(self, request: ManagedBotRequest, text: str) -> None:
        if request.chat_id is not None:
            await self.gateway.send(self._token(), request.chat_id, text, ReplyKeyboardRemove())

    async def _dress(self, channel: Channel, agent: Agent, token: str) -> None:
        """Commands, name, descriptions and profile photo (the agent's avatar): a courtesy, so Telegram
        refusing one of them does not undo the connection."""
        avatar = await self.session.get(AgentAvatar, agent.id)
        org = await self.session.get(Org, agent.org_id)
        # For everyone in the org's language, as what its bots say by themselves; in each language too.
        language = org.language if org is not None else None
        photo = as_jpeg(avatar.data) if avatar is not None else None
        try:
            await dress_bot(self.gateway, self.settings, token, agent.name, language, photo=photo)
        except TelegramError as error:
            log.warning("a managed bot's profile was not set", channel_id=channel.id, error=str(error))

    async def refresh(self, channel: Channel) -> Channel:
        """Fetch the managed bot's current token from Telegram and put the channel back to work; 400 when
        the bot is gone (deleted by its owner)."""
        token = await self.gateway.managed_bot_token(self._token(), int(channel.external_id))
        return await self.bots.rebind(channel, token)

    async def reconnect(
        self, principal: Principal, agent_id: str, channel_id: str
    ) -> tuple[Channel | None, str | None]:
        """One tap on a broken managed bot: its current token when Telegram still has the bot, else (it was
        deleted) the channel goes and a new deep link to create another comes back."""
        agent = await self._agent(principal, agent_id)
        channel = await ChannelRepository(self.session).of_agent_for_update(agent.id, channel_id)
        if channel is None:
            raise NotFound("Channel")
        if not channel.managed:
            raise Conflict(
                "Only a managed bot reconnects by itself; connect this bot again with a new token."
            )
        try:
            return await self.refresh(channel), None
        except ManagedBotUnavailable:
            await ChannelRepository(self.session).delete(channel)
            await self.session.flush()
            _, link = await self.start(principal, agent.id)
            return None, link

    async def request(self, principal: Principal, request_id: str) -> ManagedBotRequest:
        found = await self.requests.of_org(principal.org_id, request_id)
        if found is None:
            raise NotFound("Managed bot request")
        return found

    async def latest(self, principal: Principal, agent_id: str) -> ManagedBotRequest | None:
        return await self.requests.latest_of_agent(principal.org_id, agent_id)


async def tell_owners_bot_broken(
    uow: UnitOfWork, settings: Settings, secret_box: SecretBox, channel: Channel, reason: str
) -> None:
    """Tell the org's owners (email and their linked chats) that a bot stopped working, and the fix."""
    page = f"{settings.base_url}/app/agents/{channel.agent_id}/channels"

    def fix() -> str:
        return _("Reconnect it in one tap") if channel.managed else _("Connect it again with a new token")

    def subject() -> str:
        return _("Your Telegram bot @{bot} stopped working").format(bot=channel.username)

    for owner in await owners(uow, channel.org_id, BROKEN_NOTICE):
        if owner.wants_email:
            with use_language(settings, owner.language):  # each owner's own
                said = _("@{bot} stopped answering: {reason}").format(bot=channel.username, reason=reason)
                body = _("Hello,") + f"\n\n{said}\n\n{fix()}: {page}\n"
                queue_email(uow, secret_box, to=owner.email, subject=subject(), body=body, kind=BROKEN_NOTICE)
            record(uow, channel.org_id, owner.user_id, BROKEN_NOTICE, "email", subject())
    texts = in_each_language(settings, lambda: f"{subject()}. {fix()}: {page}")
    text = f"{subject()}. {fix()}: {page}"
    uow.defer(NOTIFY_CHATS_JOB, org_id=channel.org_id, text=text, kind=BROKEN_NOTICE, texts=texts)
