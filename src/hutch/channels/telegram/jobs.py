"""Answering a stored Telegram update: commands, chat through the engine, buttons, polite notices.

Two kinds of bot send updates here: an agent's own bot (its channel row names the agent) and the
operator's platform bot (the chat's link names the user's personal agent). The answer is stored on the
event before it is sent, so a retried job (Telegram down, a crash) sends the same answer again instead of
asking the model twice. A user who blocked the bot ends the job quietly, with the reason on the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import InvalidToken

from hutch.accounts.models import Org, OrgRole
from hutch.accounts.repository import MembershipRepository
from hutch.agents.models import Agent
from hutch.agents.repository import EncryptedKey
from hutch.billing.subscriptions import Subscriptions
from hutch.channels.inbound import (
    NOT_SENT_AGAIN,
    UNREADABLE_MESSAGE,
    finish_event,
    interrupted_while_sending,
    mark_event,
    sending,
)
from hutch.channels.models import Channel, ChannelLink, ChannelStatus, ExternalEvent
from hutch.channels.repository import Bot, ChannelRepository, InboxRepository
from hutch.channels.telegram.gateway import (
    BotBlocked,
    Buttons,
    FileTooLarge,
    FileUnavailable,
    TelegramGateway,
)
from hutch.channels.telegram.managed import (
    PLATFORM_UPDATES,
    ManagedBots,
    is_managed_code,
    tell_owners_bot_broken,
)
from hutch.channels.telegram.platform import (
    PLATFORM,
    SETUP_JOB,
    confirm_telegram_link,
    linked_chat,
    platform_commands,
    platform_secret,
    platform_token,
)
from hutch.channels.telegram.profile import set_menu
from hutch.channels.telegram.service import UPDATE_JOB, event_source, webhook_url
from hutch.channels.telegram.verification import PRIVATE, Verifications, may_talk
from hutch.channels.usage import count_messages, counted_messages
from hutch.conversations.end_users import language_code, telegram_profile
from hutch.conversations.inbox import InboxService
from hutch.conversations.service import ConversationService
from hutch.core.principal import Principal, PrincipalKind
from hutch.db.carried import NOTHING
from hutch.db.jobs import TURNS_QUEUE, JobContext, job
from hutch.i18n import N_, _, use_language
from hutch.turns.inbox import NO_REPLY, PLAN_LIMIT_NOTICE, answer_event
from hutch.turns.language import choose_notice_language
from hutch.turns.media import (
    Download,
    DownloadFailed,
    MediaReader,
    Received,
    TooLarge,
    default_filename,
)
from hutch.turns.tools import balance_words

log = structlog.get_logger(__name__)
CHANNEL = "telegram"
# What the bot says by itself, in the language of the chat (turns.language): translated where used.
HELP = N_(
    "Write me a message and I will answer.\n\n"
    "/reset starts a new conversation\n/human asks for a person from the team\n"
    "/balance shows the prepaid credits and time left\n/help shows this"
)
UNLINKED = N_(
    "Hello! This chat is not linked to an assistant yet. Sign in to your dashboard, open Settings, "
    "Channels, Telegram, and use the link shown there: it brings you back here, linked."
)
BAD_LINK = N_(
    "That link is not valid any more (links work once, for 30 minutes). Ask your dashboard for a new one."
)
RESET_QUESTION = N_("Start a new conversation? What we said so far stays in your history; I start afresh.")
RESET_YES, RESET_NO, BUY = "reset:yes", "reset:no", "buy:"
TOKEN_REVOKED = (
    "Telegram rejected the bot's token (revoked in @BotFather?); connect the bot again with a new one."
)


def _end_user(chat_id: Any) -> str:
    return f"telegram:{chat_id}"


@dataclass
class Chat:
    """Who a Telegram chat talks to: the bot's token and, once known, the agent (and the link)."""

    token: str
    platform: bool
    chat_id: int | str
    agent: Agent | None = None
    link: ChannelLink | None = None
    counted: tuple[str, str] | None = None  # (org id, agent id) whose channel counts this chat adds to
    channel_id: str | None = None  # the agent's own bot
    unverified: bool = False  # a factory-made bot still waiting for its owner's code
    member: tuple[str, str] | None = None  # (org id, user id) of the linked user, on the platform bot
    # Rows the turn reads again (the bot's, the org's): held here, the unit of work's identity map keeps
    # them, so reading them again by primary key costs no round trip.
    channel: Channel | None = None
    org: Org | None = None
    org_keys: list[EncryptedKey] | None = None  # the org's provider keys, read with the bot's row

    def use(self, agent: Agent | None) -> None:
        # Ids kept apart from the row: a refused turn rolls back, which expires the row's attributes.
        self.agent = agent
        self.counted = (agent.org_id, agent.id) if agent is not None else None

    def linked(self, link: ChannelLink | None) -> None:
        self.link = link
        self.member = (link.org_id, link.user_id) if link is not None else None


async def _chat(ctx: JobContext, channel_id: str, chat_id: int | str, bot: Bot | None) -> Chat | None:
    """Who the chat talks to: through the platform bot, its link; through an agent's own ``bot`` (read with
    the update), the bot's agent."""
    session = ctx.uow.session
    if channel_id == PLATFORM:
        token = platform_token(ctx.settings)
        if token is None:
            return None
        chat = Chat(token, True, chat_id)
        chat.linked(await linked_chat(ctx.uow, str(chat_id)))
        if chat.link is not None:
            chat.use(await session.get(Agent, chat.link.agent_id))
        return chat
    if bot is None:
        return None
    channel, agent, org, org_keys = bot
    if channel.token_encrypted is None:
        return None
    token = ctx.resources.secret_box.decrypt(channel.token_encrypted)
    chat = Chat(token, False, chat_id, channel_id=channel.id, channel=channel, org=org, org_keys=org_keys)
    chat.unverified = channel.status is ChannelStatus.UNVERIFIED
    chat.use(agent)
    return chat


def _chat_id(part: Any) -> int | str | None:
    chat_id = (part.get("chat") or {}).get("id") if isinstance(part, dict) else None
    return chat_id if isinstance(chat_id, int | str) else None


# Per chat in order (procrastinate's lock, set when the update is stored); chats in parallel.
@job(UPDATE_JOB, queue=TURNS_QUEUE)
async def answer_telegram_update(ctx: JobContext, channel_id: str, update_id: int) -> str:
    session = ctx.uow.session
    source, bot = event_source(channel_id), None
    if channel_id == PLATFORM:
        event = await InboxRepository(session).event_for_update(source, str(update_id))
    else:
        found = await ChannelRepository(session).event_with_bot(source, str(update_id), channel_id)
        event, bot = found if found is not None else (None, None)
    if event is None or event.handled_at is not None:
        return "done"
    if interrupted_while_sending(event):
        return finish_event(event, NOT_SENT_AGAIN)
    update = event.payload
    gateway = ctx.resources.telegram
    managed = update.get("managed_bot")
    if channel_id == PLATFORM and isinstance(managed, dict):  # a customer created their managed bot
        managed_bots = ManagedBots.of(ctx.uow, ctx.resources)
        creator = managed.get("user") or {}
        with use_language(ctx.settings, language_code(creator.get("language_code"))):
            return finish_event(event, await managed_bots.created(creator, managed.get("bot") or {}))
    query = update.get("callback_query")
    if isinstance(query, dict):
        chat_id = _chat_id(query.get("message"))
        chat = await _chat(ctx, channel_id, chat_id, bot) if chat_id is not None else None
        if chat is None:
            return finish_event(event, "nothing to answer")
        with use_language(ctx.settings, await _language(ctx, chat, query.get("from"))):
            return finish_event(event, await _press(ctx, gateway, chat, query))
    message = update.get("message") or update.get("edited_message")
    if isinstance(message, dict) and "managed_bot_created" in message:
        return finish_event(event, "noted: the managed_bot update connects the bot")
    chat_id = _chat_id(message)
    chat = await _chat(ctx, channel_id, chat_id, bot) if chat_id is not None else None
    if chat is None or not isinstance(message, dict) or (chat.agent is None and not chat.platform):
        return finish_event(event, "nothing to answer")
    with use_language(ctx.settings, await _language(ctx, chat, message.get("from"))):
        return await _answer(ctx, gateway, chat, event, message, channel_id)


async def _language(ctx: JobContext, chat: Chat, sender: Any) -> str:
    """What the bot's own words are said in: the org's language, or the sender's app language when the org
    allows it (and, on the platform bot before a chat is linked, the sender's)."""
    said = language_code(sender.get("language_code")) if isinstance(sender, dict) else None
    org_id = chat.counted[0] if chat.counted else (chat.member[0] if chat.member else None)
    chat.org = await ctx.uow.session.get(Org, org_id) if org_id is not None else None
    return choose_notice_language(ctx.settings, chat.org, said)


async def _answer(
    ctx: JobContext,
    gateway: TelegramGateway,
    chat: Chat,
    event: ExternalEvent,
    message: dict[str, Any],
    channel_id: str,
) -> str:
    if event.reply is None:
        # A turn's answer is kept on the event by the statement storing it; any other reply is committed
        # with the sending mark below, so a failed send retries with the same answer.
        event.reply = await _reply(ctx, gateway, chat, event, message)
    if event.reply == NO_REPLY:  # a member holds the conversation (they answer), or a blocked end user
        return await _handled(ctx, event, chat, "not answered: held by a member or blocked")
    text = message.get("text")
    command = _command(text)[0] if isinstance(text, str) else None
    buttons = await _buttons(ctx, chat, event.reply, command)
    async with sending(ctx.uow, event):
        try:
            sent = await gateway.send(chat.token, chat.chat_id, event.reply, buttons)
        except BotBlocked:
            return await _handled(ctx, event, chat, "not delivered: the user blocked the bot")
        except InvalidToken:
            # The bot's token was revoked in @BotFather: retrying cannot help; the owner sees why.
            await _mark_broken(ctx, channel_id, TOKEN_REVOKED)
            return await _handled(ctx, event, chat, f"not delivered: {TOKEN_REVOKED}")
    return await _handled(ctx, event, chat, "answered", sent)


async def _handled(ctx: JobContext, event: ExternalEvent, chat: Chat, outcome: str, sent: int = 0) -> str:
    """The event handled, with the chat's messages in and out counted, in one statement: last in the job,
    since every chat of a bot adds to the same row of the day."""
    counts = counted_messages(*chat.counted, CHANNEL, inbound=1, outbound=sent) if chat.counted else NOTHING
    await mark_event(ctx.uow, event, outcome, handled=True, carrying=counts)
    return outcome


async def _mark_broken(ctx: JobContext, channel_id: str, reason: str) -> None:
    channel = None if channel_id == PLATFORM else await ctx.uow.session.get(Channel, channel_id)
    if channel is not None:
        if channel.status is not ChannelStatus.ERROR:  # told once, when it breaks
            await tell_owners_bot_broken(ctx.uow, ctx.settings, ctx.resources.secret_box, channel, reason)
        channel.status, channel.last_error = ChannelStatus.ERROR, reason
    else:
        log.error("the platform bot's token was rejected; check HUTCH_TELEGRAM_BOT_TOKEN")


def _command(text: str) -> tuple[str | None, str]:
    """``/start@shop_bot abc`` → ("/start", "abc"); plain text → (None, text)."""
    if not text.startswith("/"):
        return None, text
    head, _space, rest = text.partition(" ")
    return head.split("@")[0].lower(), rest.strip()


async def _reply(
    ctx: JobContext, gateway: TelegramGateway, chat: Chat, event: ExternalEvent, message: dict[str, Any]
) -> str:
    update = event.payload
    received = _received(gateway, chat.token, message)
    text = message.get("text")
    if received:  # a photo, a voice note, a document: its caption is the text, never a command
        text = str(message.get("caption") or "")
    elif "edited_message" in update or not isinstance(text, str) or not text.strip():
        return _(UNREADABLE_MESSAGE) if chat.agent is not None else _(UNLINKED)
    assert isinstance(text, str)
    command, argument = _command(text) if not received else (None, text)
    if chat.platform and command == "/start" and is_managed_code(argument):
        sender_id = str((message.get("from") or {}).get("id", ""))
        return await ManagedBots.of(ctx.uow, ctx.resources).open(argument, str(chat.chat_id), sender_id)
    if chat.platform and command == "/start" and argument:
        sender = message.get("from") or {}
        link = await confirm_telegram_link(ctx.uow, argument, str(chat.chat_id), sender.get("username"))
        if link is None:
            return _(BAD_LINK)
        chat.linked(link)
        chat.use(await ctx.uow.session.get(Agent, link.agent_id))
        name = chat.agent.name if chat.agent else _("your assistant")
        return _("Linked! From now on, this chat goes to {name}.").format(name=name) + "\n\n" + _(HELP)
    agent = chat.agent
    if agent is None:
        return _(UNLINKED)
    if chat.channel_id is not None:  # an own bot: a factory-made one may wait for, or belong to, an owner
        sender = message.get("from") or {}
        sender_id = str(sender.get("id", ""))
        channel = chat.channel
        if channel is not None and chat.unverified:
            verifications = Verifications(ctx.uow.session, ctx.resources.secret_box)
            return await verifications.answer(channel, text, sender_id, sender.get("username"))
        if channel is not None and not may_talk(channel, agent, sender_id):
            return _(PRIVATE)
    if command == "/start":
        return _("Hello! I am {name}.").format(name=agent.name) + " " + _(HELP)
    if command == "/help":
        return _(HELP)
    if command == "/reset":
        return _(RESET_QUESTION)
    if command == "/balance":
        return await balance_words(ctx.uow, ctx.resources, agent.org_id)
    profile = telegram_profile(message.get("from") or {})
    if command == "/human":
        inbox = InboxService.of(ctx.uow, ctx.resources)
        return await inbox.ask_for_human(
            agent, CHANNEL, _end_user(chat.chat_id), profile, "asked for a person with /human on Telegram"
        )
    media = None
    if received and event.turn_message_id is None:  # (a resumed turn has its files stored already)
        media = await MediaReader.of(ctx.uow, ctx.resources).read(agent.org_id, text, received)
        if media.refusal is not None:
            return media.refusal
        text = media.text
    return await answer_event(
        ctx,
        event,
        agent,
        CHANNEL,
        _end_user(chat.chat_id),
        text,
        typing=lambda: gateway.typing(chat.token, chat.chat_id),
        profile=profile,
        media=media,
        org_keys=chat.org_keys,
    )


def _received(gateway: TelegramGateway, token: str, message: dict[str, Any]) -> list[Received]:
    """The file a message carries (a photo's largest size, a voice note, an audio file, a document)."""

    def download(file_id: str) -> Download:
        async def fetch(max_bytes: int) -> bytes:
            try:
                return await gateway.download(token, file_id, max_bytes)
            except FileTooLarge:
                raise TooLarge() from None
            except FileUnavailable as exc:
                raise DownloadFailed(str(exc)) from None

        return fetch

    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        largest = photo[-1]  # Telegram lists a photo's sizes smallest first
        size = largest.get("file_size")
        return [Received("image/jpeg", "photo.jpg", download(str(largest["file_id"])), size)]
    for field, kind in (("voice", "audio"), ("audio", "audio"), ("document", "file")):
        part = message.get(field)
        if not isinstance(part, dict) or "file_id" not in part:
            continue
        content_type = str(part.get("mime_type") or "application/octet-stream")
        filename = str(part.get("file_name") or default_filename(kind, content_type))
        duration = part.get("duration")
        return [
            Received(
                content_type,
                filename,
                download(str(part["file_id"])),
                part.get("file_size"),
                float(duration) if isinstance(duration, int | float) else None,
            )
        ]
    return []


async def _buttons(ctx: JobContext, chat: Chat, reply: str, command: str | None) -> Buttons | None:
    """Buttons under a reply: confirm a reset; on the platform bot, buy more credits or time, or create a
    managed bot."""
    if chat.platform and command == "/start":
        keyboard = await ManagedBots.of(ctx.uow, ctx.resources).keyboard(str(chat.chat_id), reply)
        if keyboard is not None:
            return keyboard
    if reply == _(RESET_QUESTION):
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(_("Start over"), callback_data=RESET_YES),
                    InlineKeyboardButton(_("Keep going"), callback_data=RESET_NO),
                ]
            ]
        )
    wants_more = reply == _(PLAN_LIMIT_NOTICE) or command == "/balance"
    if not (chat.platform and wants_more and await _may_buy(ctx, chat)):
        return None
    packages = ctx.resources.plans.packages
    return (
        InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        _("Buy {package} ({price})").format(
                            package=p.name, price=f"${p.price_cents / 100:,.2f}"
                        ),
                        callback_data=BUY + p.id,
                    )
                ]
                for p in packages[:4]
            ]
        )
        if packages
        else None
    )


async def _may_buy(ctx: JobContext, chat: Chat) -> bool:
    """Buying is for the organisation's owners and admins, and needs Stripe."""
    if ctx.resources.stripe is None or chat.member is None:
        return False
    org_id, user_id = chat.member
    role = await MembershipRepository(ctx.uow.session).role_of(org_id, user_id)
    return role is not None and role.rank >= OrgRole.ADMIN.rank


async def _press(ctx: JobContext, gateway: TelegramGateway, chat: Chat, query: dict[str, Any]) -> str:
    """Act on an inline button press; the outcome recorded on the event."""
    await gateway.answer_callback(chat.token, str(query.get("id", "")))
    data = str(query.get("data") or "")
    message_id = (query.get("message") or {}).get("message_id")
    agent = chat.agent
    if agent is None or not isinstance(message_id, int):
        return "button ignored: no agent behind this chat"
    if data == RESET_YES:
        await ConversationService(ctx.uow.session).reset_open(agent, CHANNEL, _end_user(chat.chat_id))
        done = _("Done: we start a new conversation.")
        await gateway.edit_text(chat.token, chat.chat_id, message_id, done)
        return "conversation reset"
    if data == RESET_NO:
        fine = _("Fine, we carry on where we were.")
        await gateway.edit_text(chat.token, chat.chat_id, message_id, fine)
        return "reset declined"
    if data.startswith(BUY) and chat.platform and await _may_buy(ctx, chat):
        assert chat.member is not None and ctx.resources.stripe is not None
        buyer = Principal(
            kind=PrincipalKind.USER,
            org_id=chat.member[0],
            scopes=frozenset(),
            user_id=chat.member[1],
            org_role=OrgRole.ADMIN.value,
        )
        subscriptions = Subscriptions.of(ctx.uow, ctx.resources)
        url = (await subscriptions.checkout_package(buyer, data.removeprefix(BUY), None, None))[0]
        pay = InlineKeyboardMarkup([[InlineKeyboardButton(_("Pay securely on Stripe"), url=url)]])
        await gateway.send(chat.token, chat.chat_id, _("Here is your checkout page:"), pay)
        await count_messages(ctx.uow.session, agent.org_id, agent.id, CHANNEL, outbound=1)
        return "checkout sent"
    return "button ignored"


@job(SETUP_JOB, queue="channels")
async def set_up_platform_bot(ctx: JobContext) -> str:
    """Point the platform bot's webhook at Hutch and list its commands, for everyone in the deployment's
    default language and in each language Hutch speaks; repeated at every start."""
    token = platform_token(ctx.settings)
    if token is None:
        return "no platform bot"
    gateway = ctx.resources.telegram
    await gateway.set_webhook(
        token, webhook_url(ctx.settings, PLATFORM), platform_secret(ctx.settings), PLATFORM_UPDATES
    )
    await set_menu(gateway, ctx.settings, token, None, platform_commands)
    return "webhook set"
