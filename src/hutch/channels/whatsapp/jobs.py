"""Answering a stored inbound WhatsApp message: link codes, unlinked numbers, chat, delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hutch.agents.models import Agent
from hutch.channels.inbound import (
    NOT_SENT_AGAIN,
    UNREADABLE_MESSAGE,
    finish_event,
    interrupted_while_sending,
    mark_event,
    sending,
)
from hutch.channels.models import ExternalEvent, LinkStatus
from hutch.channels.repository import InboxRepository, LinkedAgent, LinkRepository
from hutch.channels.whatsapp.gateway import MediaUnavailable, WhatsAppGateway, WhatsAppNotConfigured
from hutch.channels.whatsapp.service import EVENT_SOURCE, INBOUND_JOB, LINK_COMMAND
from hutch.core.egress import EgressError
from hutch.core.security import sha256_hex
from hutch.db.jobs import TURNS_QUEUE, JobContext, job
from hutch.i18n import N_, _, use_language
from hutch.turns.inbox import NO_REPLY, answer_event
from hutch.turns.language import choose_notice_language
from hutch.turns.media import Download, DownloadFailed, MediaReader, Received, TooLarge, default_filename

CHANNEL = "whatsapp"
MAX_MEDIA = 10  # files per message, as Twilio allows
UNLINKED = N_(
    "This number is not linked to an assistant yet. Sign in to your dashboard, link this number "
    "(Settings, Channels, WhatsApp) and send the code shown there, like: LINK 123456"
)


# Per number in order (procrastinate's lock, set when the message is stored); numbers in parallel.
@job(INBOUND_JOB, queue=TURNS_QUEUE)
async def answer_whatsapp_message(ctx: JobContext, message_sid: str) -> str:
    session = ctx.uow.session
    event = await InboxRepository(session).event_for_update(EVENT_SOURCE, message_sid)
    if event is None or event.handled_at is not None:
        return "done"
    if interrupted_while_sending(event):
        return finish_event(event, NOT_SENT_AGAIN)
    sender = str(event.payload.get("From", "")).removeprefix("whatsapp:")
    if not sender:
        return finish_event(event, "nothing to answer")
    gateway = ctx.resources.whatsapp
    if gateway is None:
        raise WhatsAppNotConfigured()  # retried: the settings may be fixed meanwhile
    if event.reply is None:
        # The number's link (its reply window opened by this message), its agent, org and provider keys, in
        # one statement: held here, the turn reads them from the unit of work.
        linked = await LinkRepository(session).inbound_to_active(CHANNEL, sender, event.received_at)
        org = linked[2] if linked is not None else None
        # (WhatsApp tells no language of its own: the org's.)
        with use_language(ctx.settings, choose_notice_language(ctx.settings, org, None)):
            event.reply = await _reply(ctx, event, sender, gateway, linked)
        await ctx.uow.checkpoint()  # the answer is kept even if sending fails below
    if event.reply == NO_REPLY:  # a member holds the conversation (they answer), or a blocked end user
        return finish_event(event, "not answered: held by a member or blocked")
    async with sending(ctx.uow, event):
        await gateway.send(sender, event.reply)
    await mark_event(ctx.uow, event, "answered", handled=True)
    return "answered"


async def _reply(
    ctx: JobContext,
    event: ExternalEvent,
    sender: str,
    gateway: WhatsAppGateway,
    linked: LinkedAgent | None,
) -> str:
    params = event.payload
    now = datetime.now(UTC)
    body = str(params.get("Body") or "")
    command = LINK_COMMAND.match(body)
    if command is not None:
        return await _confirm_link(ctx, sender, command.group(1), now)
    if linked is None:
        return _(UNLINKED)
    _link, agent, _org, org_keys = linked
    if agent is None:
        return _(UNLINKED)
    received = _received(gateway, params)
    if not received and not body.strip():
        return _(UNREADABLE_MESSAGE)
    media = None
    if received and event.turn_message_id is None:  # (a resumed turn has its files stored already)
        media = await MediaReader.of(ctx.uow, ctx.resources).read(agent.org_id, body, received)
        if media.refusal is not None:
            return media.refusal
        body = media.text
    return await answer_event(
        ctx, event, agent, CHANNEL, f"{CHANNEL}:{sender}", body, media=media, org_keys=org_keys
    )


def _received(gateway: WhatsAppGateway, params: dict[str, Any]) -> list[Received]:
    """The files of a message: Twilio's ``NumMedia``, ``MediaUrl0..N`` and ``MediaContentType0..N``."""

    def download(url: str) -> Download:
        async def fetch(max_bytes: int) -> bytes:
            try:
                return await gateway.media(url, max_bytes)
            except EgressError as exc:
                if "more than" in str(exc):
                    raise TooLarge() from None
                raise DownloadFailed(str(exc)) from None
            except MediaUnavailable as exc:
                raise DownloadFailed(str(exc)) from None

        return fetch

    received = []
    for index in range(min(int(params.get("NumMedia") or 0), MAX_MEDIA)):
        url = params.get(f"MediaUrl{index}")
        if not isinstance(url, str) or not url:
            continue
        content_type = str(params.get(f"MediaContentType{index}") or "application/octet-stream")
        kind = "audio" if content_type.startswith("audio/") else "image"
        if not content_type.startswith(("audio/", "image/")):
            kind = "file"
        received.append(Received(content_type, default_filename(kind, content_type), download(url)))
    return received


async def _confirm_link(ctx: JobContext, sender: str, code: str, now: datetime) -> str:
    session = ctx.uow.session
    links = LinkRepository(session)
    pending = await links.pending_by_code_for_update(sha256_hex(f"whatsapp:{sender}:{code}"), now)
    if pending is None:
        return _(
            "That code is not valid for this number, or it has expired. Ask for a new one in your dashboard."
        )
    # The number now belongs to this user's assistant; an older link of the number ends.
    await links.end_active_at(CHANNEL, sender, now)
    await session.flush()
    pending.status, pending.last_inbound_at = LinkStatus.ACTIVE, now
    agent = await session.get(Agent, pending.agent_id)
    name = agent.name if agent else _("your assistant")
    return _("Linked! From now on, messages from this number go to {name}. Say hello.").format(name=name)
