"""The web chat widget: a public agent on the customer's own site.

Each widget is a channel row whose ``external_id`` is a public token: it sits in the customer's HTML, so
it identifies the widget without granting anything beyond talking to that agent, from the sites listed in
``allowed_origins``, within per-visitor, per-address and per-agent rate limits. A visitor is a random id
the browser keeps; their conversation continues across page loads.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from hutch.agents.models import Agent, AgentStatus, Audience
from hutch.agents.repository import AgentRepository
from hutch.channels.models import Channel, ChannelStatus, ChannelType
from hutch.channels.repository import ChannelRepository
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.models import MessageAttachment
from hutch.core.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.ratelimit import RateLimiter
from hutch.db.engine import UnitOfWork
from hutch.i18n import _
from hutch.settings import Settings

CHANNEL = "webchat"
MAX_ORIGINS = 20
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
TOKEN_PREFIX = "wc_"


class UnknownWidget(NotFound):
    def __init__(self) -> None:
        super().__init__(detail="No such chat widget; check the token in your snippet.")


def normalize_origin(value: str) -> str:
    """``https://Shop.example:443/`` → ``https://shop.example``; ValueError for anything but a web origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not a web origin; write it like https://www.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} has more than an origin; keep only scheme://host[:port]")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def normalize_origins(values: list[str]) -> list[str]:
    """The sites a widget allows, checked and deduplicated (a pydantic validator: errors are 422s)."""
    origins = sorted({normalize_origin(v) for v in values})
    if not origins:
        raise ValueError("List at least one site allowed to embed the widget, like https://www.example.com")
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"A widget allows at most {MAX_ORIGINS} sites.")
    return origins


AllowedOrigins = Annotated[list[str], AfterValidator(normalize_origins)]


def visitor_end_user(channel: Channel, visitor_id: str) -> str:
    if not VISITOR_ID.match(visitor_id):
        raise BadRequest("visitor_id must be 16 to 64 letters, digits, '-' or '_'.")
    return f"webchat:{channel.id}:{visitor_id}"


class Widgets:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self.channels = ChannelRepository(uow.session)

    async def _agent(self, principal: Principal, agent_id: str) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def create(self, principal: Principal, agent_id: str, origins: list[str]) -> Channel:
        agent = await self._agent(principal, agent_id)
        if agent.audience is not Audience.PUBLIC:
            raise Conflict(
                'The web chat widget is for public agents; set the agent\'s audience to "public" first.'
            )
        channel = Channel(
            id=new_id("chn"),
            org_id=agent.org_id,
            agent_id=agent.id,
            type=ChannelType.WEBCHAT,
            status=ChannelStatus.ACTIVE,
            external_id=TOKEN_PREFIX + secrets.token_urlsafe(24),
            allowed_origins=origins,
        )
        self.channels.add(channel)
        await self.session.flush()
        return channel

    async def set_origins(
        self, principal: Principal, agent_id: str, channel_id: str, origins: list[str]
    ) -> Channel:
        agent = await self._agent(principal, agent_id)
        channel = await self.channels.of_agent_for_update(agent.id, channel_id)
        if channel is None:
            raise NotFound("Channel")
        if channel.type is not ChannelType.WEBCHAT:
            raise BadRequest("Only a web chat widget has allowed origins.")
        channel.allowed_origins = origins
        await self.session.flush()
        return channel

    async def visitor_file(self, channel: Channel, visitor_id: str, attachment_id: str) -> MessageAttachment:
        """A file the visitor sent through this widget, with its bytes; anyone else's is not found."""
        found = await AttachmentRepository(self.session).file_of_end_user(
            channel.agent_id, CHANNEL, visitor_end_user(channel, visitor_id), attachment_id
        )
        if found is None:
            raise NotFound("Attachment")
        return found

    async def visitor_files(self, org_id: str, message_ids: list[str]) -> dict[str, list[MessageAttachment]]:
        """The files of these messages of a visitor's conversation (without their bytes), by message."""
        return await AttachmentRepository(self.session).of_messages(org_id, message_ids)

    async def open(self, token: str) -> tuple[Channel, Agent]:
        """The widget behind a public token, with its agent; 404 for an unknown or removed widget."""
        found = await self.channels.widget(token)
        if found is None:
            raise UnknownWidget()
        return found


def check_origin(channel: Channel, origin: str | None) -> None:
    """Browsers name the page's origin; only the customer's sites may use the widget. Requests without an
    Origin (servers, curl) are not browsers and get no CORS headers, so they are let through to the limits.
    """
    if origin is None:
        return
    try:
        allowed = normalize_origin(origin) in channel.allowed_origins
    except ValueError:
        allowed = False
    if not allowed:
        raise Forbidden("This site is not allowed to use this chat widget; add it to the widget's origins.")


def check_available(agent: Agent) -> None:
    if agent.status is not AgentStatus.ACTIVE:
        raise Conflict(_("This assistant is not available right now. Please try again later."))


async def check_rates(
    limiter: RateLimiter, settings: Settings, channel: Channel, visitor_id: str, ip: str | None
) -> None:
    """Per visitor, per visitor address and per agent, each per minute; 429 with the wait when over."""
    limits = [
        (f"widget:visitor:{channel.id}:{visitor_id}", settings.widget_visitor_per_minute),
        (f"widget:agent:{channel.agent_id}", settings.widget_agent_per_minute),
    ]
    if ip:
        limits.insert(1, (f"widget:ip:{channel.id}:{ip}", settings.widget_ip_per_minute))
    for key, limit in limits:
        decision = await limiter.hit(key, limit, 60)
        if not decision.allowed:
            raise RateLimited(
                decision.retry_after, _("You are sending messages too quickly. Please wait a moment.")
            )
