"""Answering a stored Telegram update: commands, chat through the engine, polite notices, delivery.

The answer is stored on the event before it is sent, so a retried job (Telegram down, a crash) sends the
same answer again instead of asking the model twice. A user who blocked the bot ends the job quietly,
with the reason on the event.
"""

from __future__ import annotations

from typing import Any

import structlog

from hutch.agents.models import Agent
from hutch.channels.inbound import TEXT_ONLY, converse, finish_event
from hutch.channels.models import Channel, ExternalEvent
from hutch.channels.telegram.gateway import BotBlocked, TelegramGateway
from hutch.channels.telegram.service import UPDATE_JOB, event_source
from hutch.conversations.chat import ChatFlow
from hutch.conversations.service import ConversationService
from hutch.worker import JobContext, job

log = structlog.get_logger(__name__)
CHANNEL = "telegram"
HELP = (
    "Write me a message and I will answer.\n\n"
    "/reset starts a new conversation\n/balance shows the prepaid credits and time left\n/help shows this"
)


def _end_user(chat_id: Any) -> str:
    return f"telegram:{chat_id}"


@job(UPDATE_JOB, queue="channels")
async def answer_telegram_update(ctx: JobContext, channel_id: str, update_id: int) -> str:
    session = ctx.uow.session
    event = await session.get(ExternalEvent, (event_source(channel_id), str(update_id)), with_for_update=True)
    if event is None or event.handled_at is not None:
        return "done"
    channel = await session.get(Channel, channel_id)
    agent = await session.get(Agent, channel.agent_id) if channel else None
    update = event.payload
    message = update.get("message") or update.get("edited_message")
    chat_id = (message.get("chat") or {}).get("id") if isinstance(message, dict) else None
    if (
        channel is None
        or agent is None
        or not isinstance(message, dict)
        or not isinstance(chat_id, int | str)
    ):
        return finish_event(event, "nothing to answer")
    token = ctx.resources.secret_box.decrypt(channel.token_encrypted)
    gateway = TelegramGateway(ctx.settings.telegram_api_base)
    if event.reply is None:
        event.reply = await _reply(ctx, gateway, token, agent, update, message, chat_id)
        await session.commit()  # the answer is kept even if sending fails below
    try:
        await gateway.send(token, chat_id, event.reply)
    except BotBlocked:
        return finish_event(event, "not delivered: the user blocked the bot")
    return finish_event(event, "answered")


async def _reply(
    ctx: JobContext,
    gateway: TelegramGateway,
    token: str,
    agent: Agent,
    update: dict[str, Any],
    message: dict[str, Any],
    chat_id: Any,
) -> str:
    text = message.get("text")
    if "edited_message" in update or not isinstance(text, str) or not text.strip():
        return TEXT_ONLY
    flow = ChatFlow(ctx.uow, ctx.resources)
    command = text.split()[0].split("@")[0].lower() if text.startswith("/") else None
    if command == "/start":
        return f"Hello! I am {agent.name}. {HELP}"
    if command == "/help":
        return HELP
    if command == "/reset":
        await ConversationService(ctx.uow.session).reset_open(agent, CHANNEL, _end_user(chat_id))
        return "Done: we start a new conversation. What can I do for you?"
    if command == "/balance":
        return await flow.balance_words(agent.org_id)
    return await converse(
        ctx, agent, CHANNEL, _end_user(chat_id), text, typing=lambda: gateway.typing(token, chat_id)
    )
