"""Inbox housekeeping: an inbound event stored without its reply job (the process died between the two)
gets the job again, so no message someone sent goes unanswered."""

from __future__ import annotations

from hutch.channels.human_replies import deliver_human_reply
from hutch.channels.repository import InboxRepository, LinkRepository
from hutch.channels.telegram.gateway import BotBlocked
from hutch.channels.telegram.platform import platform_token
from hutch.channels.telegram.service import UPDATE_JOB
from hutch.channels.whatsapp.service import EVENT_SOURCE as WHATSAPP_SOURCE
from hutch.channels.whatsapp.service import INBOUND_JOB
from hutch.conversations.inbox import HUMAN_REPLY_JOB
from hutch.db.jobs import HOUSEKEEPING_QUEUE, JobContext, job
from hutch.i18n import language_for
from hutch.notifications.customers import NOTIFY_CHATS_JOB, owners, record


@job("channels.requeue_lost_events", cron="* * * * *", queue=HOUSEKEEPING_QUEUE, retry=False)
async def requeue_lost_events(ctx: JobContext, timestamp: int = 0) -> int:
    rows = await InboxRepository(ctx.uow.session).lost_events(UPDATE_JOB, INBOUND_JOB, WHATSAPP_SOURCE)
    for source, external_id in rows:
        if source == WHATSAPP_SOURCE:
            ctx.uow.defer(INBOUND_JOB, message_sid=external_id)
        else:
            ctx.uow.defer(UPDATE_JOB, channel_id=source.removeprefix("telegram:"), update_id=int(external_id))
    return len(rows)


NOTIFY_JOB = NOTIFY_CHATS_JOB


@job(NOTIFY_JOB, queue="channels", retry=3)
async def notify_owners(
    ctx: JobContext, org_id: str, text: str, kind: str = "notice", texts: dict[str, str] | None = None
) -> int:
    """Tell the organisation's owners something in the chats they linked (Telegram through the platform
    bot, WhatsApp, with the approved template outside the 24-hour window), the ways each chose for this
    kind of notice; each message sent is recorded. How many chats were told. ``texts``: the notice in each
    language, for each owner's own (else ``text``)."""
    chatty = {owner.user_id: owner for owner in await owners(ctx.uow, org_id, kind) if owner.wants_chat}
    links = await LinkRepository(ctx.uow.session).active_of_users(org_id, chatty)
    # Signed with the operator's product name: the platform bot and number speak for the brand.
    brand = ctx.resources.brand
    told = 0
    for link in links:
        owner = chatty[link.user_id]
        if not owner.wants(link.channel):
            continue
        said = (texts or {}).get(language_for(ctx.settings, owner.language), text)
        signed = f"{brand.name}: {said}" if brand.is_custom else said
        if link.channel == "telegram" and (token := platform_token(ctx.settings)):
            try:
                await ctx.resources.telegram.send(token, link.address, signed)
            except BotBlocked:
                continue
        elif link.channel == "whatsapp" and ctx.resources.whatsapp is not None:
            await ctx.resources.whatsapp.notify(link.address, signed, link.last_inbound_at)
        else:
            continue
        record(ctx.uow, org_id, link.user_id, kind, link.channel, text)
        told += 1
    return told


@job(HUMAN_REPLY_JOB, queue="channels", retry=3)
async def deliver_member_reply(ctx: JobContext, message_id: str) -> str:
    """A member's reply in a conversation they took over, sent through the conversation's channel."""
    return await deliver_human_reply(ctx, message_id)
