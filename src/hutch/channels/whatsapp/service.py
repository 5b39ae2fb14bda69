"""Personal WhatsApp: link a number to one's personal agent, and the inbox behind Twilio's webhook."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from hutch.channels.inbound import store_event_with_job
from hutch.channels.links import personal_agent, retire_pending_links
from hutch.channels.models import ChannelLink, LinkStatus
from hutch.channels.repository import LinkRepository
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.settings import Settings

INBOUND_JOB = "channels.whatsapp_inbound"
EVENT_SOURCE = "twilio:whatsapp"
LINK_CODE_MINUTES = 30
LINK_COMMAND = re.compile(r"^\s*link\s+(\d{6})\s*$", re.IGNORECASE)


def new_link_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def link_instructions(settings: Settings, link: ChannelLink, code: str) -> str:
    """What the person does next: send the code from the number being linked."""
    number = (settings.twilio_whatsapp_from or "").removeprefix("whatsapp:")
    return (
        f'From {link.address}, send "LINK {code}" on WhatsApp to {number} within {LINK_CODE_MINUTES} minutes.'
    )


async def start_link(
    uow: UnitOfWork, settings: Settings, principal: Principal, phone_e164: str, agent_id: str | None
) -> tuple[ChannelLink, str]:
    """A pending link of ``phone_e164`` to the user's personal agent, and the code to send from it."""
    agent = await personal_agent(uow, principal, agent_id)
    assert principal.user_id is not None
    await retire_pending_links(uow, principal.user_id, "whatsapp")
    code = new_link_code()
    link = ChannelLink(
        id=new_id("lnk"),
        org_id=principal.org_id,
        user_id=principal.user_id,
        agent_id=agent.id,
        channel="whatsapp",
        address=phone_e164,
        status=LinkStatus.PENDING,
        code_hash=sha256_hex(f"whatsapp:{phone_e164}:{code}"),
        code_expires_at=datetime.now(UTC) + timedelta(minutes=LINK_CODE_MINUTES),
    )
    LinkRepository(uow.session).add(link)
    await uow.session.flush()
    return link, code


async def accept_inbound(uow: UnitOfWork, params: dict[str, str]) -> bool:
    """Store a verified inbound WhatsApp message for the reply job; False for a replay."""
    sid = params.get("MessageSid") or params.get("SmsMessageSid")
    if not sid:
        return False
    # One number's messages are answered one at a time, in the order they came; numbers in parallel.
    lock = f"whatsapp:{params.get('From', sid)}"
    return await store_event_with_job(
        uow, EVENT_SOURCE, sid, dict(params), INBOUND_JOB, lock=lock, message_sid=sid
    )
