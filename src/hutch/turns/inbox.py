"""A turn that answers an inbox event (a Telegram update, a WhatsApp message), exactly once across retries.

Phase 1 records the stored message on the event in its own commit, and phase 3 the answer, so a job that
stops anywhere (a crash, kill -9, the database restarting) is retried without storing or admitting the
message twice: after phase 1 it resumes from the stored message. Phase 3's statement also marks the event
as being sent (``channels.inbound.sending``), so an answer is sent once or visibly not sent again: a job
that stops after it records that instead of risking a second copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.orm.attributes import set_committed_value

from hutch.accounts.suspension import OrgSuspended
from hutch.agents.models import Agent
from hutch.agents.repository import EncryptedKey
from hutch.billing.quotas import EndUserRateLimited
from hutch.channels.models import SENDING, ExternalEvent
from hutch.conversations.end_users import EndUserProfile
from hutch.conversations.inbox import EndUserBlocked
from hutch.conversations.models import Message
from hutch.core.errors import HutchError
from hutch.db.carried import Carried
from hutch.db.jobs import JobContext
from hutch.i18n import N_, _
from hutch.turns.flow import TurnFlow
from hutch.turns.media import ReadMedia
from hutch.turns.repository import event_turn, reply_kept

# What a held turn (a member has taken the conversation over) or a blocked end user gets: nothing sent.
NO_REPLY = ""
PLAN_LIMIT_NOTICE = N_("I cannot answer more messages at the moment: this assistant's plan limit is reached.")
UNAVAILABLE_NOTICE = N_("I cannot answer right now. Please try again later.")
SUSPENDED_NOTICE = N_("Sorry, this assistant is not available at the moment.")


async def answer_event(
    ctx: JobContext,
    event: ExternalEvent,
    agent: Agent,
    channel: str,
    end_user: str,
    text: str,
    typing: Callable[[], Awaitable[None]] | None = None,
    profile: EndUserProfile | None = None,
    media: ReadMedia | None = None,
    org_keys: list[EncryptedKey] | None = None,
) -> str:
    """The reply to ``text``, kept on ``event`` (committed with the answer); a refusal's polite notice;
    :data:`NO_REPLY` when a member holds the conversation or the end user is blocked. ``media``: the files
    sent with the message, read beforehand (``hutch.turns.media``). ``org_keys``: the org's provider keys,
    when the channel read them with its own rows (else the turn reads them)."""
    flow = TurnFlow(ctx.uow, ctx.resources)
    if org_keys is not None:
        flow.knows_keys(agent.org_id, org_keys)
    message_id = event.turn_message_id

    def begun(message: Message) -> Carried:
        set_committed_value(event, "turn_message_id", message.id)  # written by phase 1's last statement
        return event_turn(event, message.id)

    if message_id is None:
        try:
            turn = await flow.begin(
                agent, channel, end_user, text, record=begun, profile=profile, media=media
            )
        except EndUserBlocked:
            return NO_REPLY
        except HutchError as refused:
            return notice(refused)
    else:  # phase 1 committed in an earlier attempt
        resumed = await flow.resume(message_id)
        if resumed is None:
            return _(UNAVAILABLE_NOTICE)
        turn = resumed
    if turn.held:
        return NO_REPLY
    # "Typing…" goes out while the model starts: its round trip is not added to the answer's wait. It is
    # awaited before the answer is handed on, so it never arrives after the answer.
    shown = asyncio.ensure_future(typing()) if typing is not None and turn.notice is None else None
    try:
        reply = (await flow.answer(turn, carrying=lambda text: reply_kept(event, text))).text
    finally:
        if shown is not None:
            await shown
    # Written by the answer's statement, which marks the event as being sent: nothing to flush.
    set_committed_value(event, "reply", reply)
    set_committed_value(event, "outcome", SENDING)
    return reply


def notice(refused: HutchError) -> str:
    """What the person hears when the agent cannot answer, in the language of the moment: plans and
    upgrades are for the owner."""
    if isinstance(refused, EndUserRateLimited) and refused.per == "day":
        return _("You have sent me a lot of messages today. Please come back tomorrow.")
    if isinstance(refused, EndUserRateLimited):
        return _("You are sending messages faster than I can answer. Please wait a minute and try again.")
    if refused.status_code == 429 and "per day" in refused.detail:
        return _("I have answered all the messages I can for today. Please come back tomorrow.")
    if refused.status_code == 429:
        return _("I am receiving a lot of messages right now. Please try again in a little while.")
    if refused.status_code == 402:
        return _(PLAN_LIMIT_NOTICE)
    if isinstance(refused, OrgSuspended):
        return _(SUSPENDED_NOTICE)
    return _(UNAVAILABLE_NOTICE)
