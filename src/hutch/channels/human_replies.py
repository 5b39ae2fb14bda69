"""A member's reply in a conversation they took over, delivered through the conversation's channel.

Telegram goes through the bot the end user talks to (the agent's own, or the platform bot for a linked
chat); WhatsApp as a free-form message inside its 24-hour window and as the approved template outside it;
the web widget shows it with the visitor's conversation (it reads the stored messages); conversations of
the API, voice transcripts and tasks only store it. A reply that cannot be delivered is marked failed with
the reason, so the inbox shows it. Like an agent's answer, the send is marked in the inbox first: a worker
that stops mid-send leaves the reply marked "not sent again" rather than risk a second copy.
"""

from __future__ import annotations

from telegram.error import InvalidToken

from hutch.channels.inbound import (
    NOT_SENT_AGAIN,
    finish_event,
    interrupted_while_sending,
    sending,
    store_event,
)
from hutch.channels.models import ChannelStatus, ChannelType
from hutch.channels.repository import ChannelRepository, InboxRepository, LinkRepository
from hutch.channels.telegram.gateway import BotBlocked
from hutch.channels.telegram.platform import platform_token
from hutch.channels.usage import count_messages
from hutch.conversations.models import Conversation, Message, MessageRole, MessageStatus
from hutch.core.errors import ServiceUnavailable
from hutch.db.jobs import JobContext

STORED_ONLY = "stored: the channel reads it from the conversation"
EVENT_SOURCE = "human-reply"  # inbox events of members' replies, by message id


async def deliver_human_reply(ctx: JobContext, message_id: str) -> str:
    """Send the stored human message to its end user; the outcome, in words."""
    session = ctx.uow.session
    message = await session.get(Message, message_id)
    if message is None or message.role is not MessageRole.HUMAN or message.status is MessageStatus.FAILED:
        return "nothing to deliver"
    conversation = await session.get(Conversation, message.conversation_id)
    if conversation is None:
        return "nothing to deliver"
    if conversation.channel not in ("telegram", "whatsapp"):
        return STORED_ONLY
    await store_event(session, EVENT_SOURCE, message.id, {"conversation_id": conversation.id})
    event = await InboxRepository(session).event_for_update(EVENT_SOURCE, message.id)
    assert event is not None
    if event.handled_at is not None:
        return event.outcome or "sent"
    if interrupted_while_sending(event):
        message.status, message.error = MessageStatus.FAILED, NOT_SENT_AGAIN
        return finish_event(event, NOT_SENT_AGAIN)
    _, _, address = conversation.end_user.partition(":")
    async with sending(ctx.uow, event):
        if conversation.channel == "telegram":
            outcome = await _telegram(ctx, conversation, address, message.content)
        else:
            outcome = await _whatsapp(ctx, address, message.content)
    if outcome != "sent":
        message.status, message.error = MessageStatus.FAILED, outcome
    return finish_event(event, outcome)


async def _telegram(ctx: JobContext, conversation: Conversation, chat_id: str, text: str) -> str:
    session = ctx.uow.session
    token: str | None = None
    for channel in await ChannelRepository(session).of_agent(conversation.agent_id):
        if (
            channel.type is ChannelType.TELEGRAM
            and channel.status is ChannelStatus.ACTIVE
            and channel.token_encrypted is not None
        ):
            token = ctx.resources.secret_box.decrypt(channel.token_encrypted)
            break
    if token is None:
        link = await LinkRepository(session).active_at("telegram", chat_id)
        if link is not None and link.agent_id == conversation.agent_id:
            token = platform_token(ctx.settings)
    if token is None:
        return "not delivered: the agent has no Telegram bot for this chat any more"
    try:
        sent = await ctx.resources.telegram.send(token, chat_id, text)
    except BotBlocked:
        return "not delivered: the user blocked the bot"
    except InvalidToken:
        return "not delivered: Telegram rejected the bot's token"
    await count_messages(session, conversation.org_id, conversation.agent_id, "telegram", outbound=sent)
    return "sent"


async def _whatsapp(ctx: JobContext, number: str, text: str) -> str:
    gateway = ctx.resources.whatsapp
    if gateway is None:
        return "not delivered: WhatsApp is not set up on this service"
    link = await LinkRepository(ctx.uow.session).active_at("whatsapp", number)
    try:
        await gateway.notify(number, text, link.last_inbound_at if link is not None else None)
    except ServiceUnavailable as refused:  # outside the window without a template
        return f"not delivered: {refused.detail}"
    return "sent"
