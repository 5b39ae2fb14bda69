"""Telegram channels of an agent's own bot: connect, list, remove, and the inbox behind the webhook."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from hutch.agents.models import Agent
from hutch.agents.repository import AgentRepository
from hutch.billing.plans import PlanCatalog
from hutch.billing.quotas import Quotas
from hutch.channels.inbound import store_event_with_job
from hutch.channels.models import Channel, ChannelStatus, ChannelType
from hutch.channels.repository import ChannelRepository
from hutch.channels.telegram.gateway import TelegramGateway
from hutch.channels.telegram.platform import PLATFORM, platform_secret, platform_token
from hutch.core.errors import Conflict, Forbidden, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox, sha256_hex
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import JobOutbox, WorkerResources
from hutch.settings import Settings

UPDATE_JOB = "channels.telegram_update"


def webhook_url(settings: Settings, channel_id: str) -> str:
    return f"{settings.base_url}/webhooks/telegram/{channel_id}"


def event_source(channel_id: str) -> str:
    return f"telegram:{channel_id}"


class TelegramChannels:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        secret_box: SecretBox,
        gateway: TelegramGateway,
        plans: PlanCatalog,
    ) -> None:
        self.uow = uow
        self.plans = plans
        self.session = uow.session
        self.channels = ChannelRepository(uow.session)
        self.settings = settings
        self.secret_box = secret_box
        self.gateway = gateway

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> TelegramChannels:
        """The service for a request or a job, with the process's gateway."""
        return cls(uow, resources.settings, resources.secret_box, resources.telegram, resources.plans)

    async def _agent(self, principal: Principal, agent_id: str) -> Agent:
        agent = await AgentRepository(self.session).get(principal, agent_id)
        if agent is None:
            raise NotFound("Agent")
        return agent

    async def connect(self, principal: Principal, agent_id: str, bot_token: str) -> Channel:
        """Check the token with getMe, store it encrypted, and point the bot's webhook at Hutch."""
        return await self.bind(await self._agent(principal, agent_id), bot_token)

    async def check_bot_quota(self, org_id: str) -> None:
        """Refuse (402, naming the plan) one more Telegram bot past the plan's ``telegram_bots``."""
        await Quotas(self.session, self.plans).check_count(
            org_id, "telegram_bots", lambda: self.channels.telegram_bots_in_org(org_id)
        )

    async def bind(
        self,
        agent: Agent,
        bot_token: str,
        status: ChannelStatus = ChannelStatus.ACTIVE,
        *,
        owner_id: str | None = None,
        managed: bool = False,
    ) -> Channel:
        """The bot as a channel of ``agent``: for a token the customer brought, one the factory made, or a
        managed bot (``owner_id``: the Telegram user who created it)."""
        identity = await self.gateway.identify(bot_token)
        if await self.channels.telegram_bot(str(identity.id)) is not None:
            raise Conflict(f"@{identity.username} is already connected to an agent; remove it there first.")
        await self.check_bot_quota(agent.org_id)
        secret = secrets.token_urlsafe(32)
        channel = Channel(
            id=new_id("chn"),
            org_id=agent.org_id,
            agent_id=agent.id,
            type=ChannelType.TELEGRAM,
            status=status,
            external_id=str(identity.id),
            username=identity.username,
            token_encrypted=self.secret_box.encrypt(bot_token),
            webhook_secret_hash=sha256_hex(secret),
            owner_external_id=owner_id,
            managed=managed,
        )
        self.channels.add(channel)
        await self.session.flush()
        # Last: if Telegram refuses, the request fails and the row above is rolled back with it.
        await self.gateway.set_webhook(bot_token, webhook_url(self.settings, channel.id), secret)
        return channel

    async def rebind(self, channel: Channel, bot_token: str) -> Channel:
        """A broken bot's channel working again with its current token: a fresh webhook secret, active."""
        identity = await self.gateway.identify(bot_token)
        if str(identity.id) != channel.external_id:
            raise Conflict("That token belongs to another bot.")
        channel.token_encrypted = self.secret_box.encrypt(bot_token)
        channel.status, channel.last_error, channel.username = ChannelStatus.ACTIVE, None, identity.username
        await self.resume(channel)
        return channel

    async def pause(self, channel: Channel) -> None:
        """Telegram stops sending the bot's messages here (its webhook is deleted); the channel stays."""
        if channel.token_encrypted is not None:
            await self.gateway.delete_webhook(self.secret_box.decrypt(channel.token_encrypted))

    async def resume(self, channel: Channel) -> None:
        """The bot's webhook points here again, with a fresh secret (the old one is known only hashed)."""
        if channel.token_encrypted is None:
            return
        secret = secrets.token_urlsafe(32)
        channel.webhook_secret_hash = sha256_hex(secret)
        await self.session.flush()
        forget_secret(channel.id)
        token = self.secret_box.decrypt(channel.token_encrypted)
        await self.gateway.set_webhook(token, webhook_url(self.settings, channel.id), secret)

    async def list(self, principal: Principal, agent_id: str) -> list[Channel]:
        agent = await self._agent(principal, agent_id)
        return await self.channels.of_agent(agent.id)

    async def remove(self, principal: Principal, agent_id: str, channel_id: str) -> None:
        agent = await self._agent(principal, agent_id)
        channel = await self.channels.of_agent_for_update(agent.id, channel_id)
        if channel is None:
            raise NotFound("Channel")
        if channel.token_encrypted is not None:  # a bot (a widget has no webhook to delete)
            await self.gateway.delete_webhook(self.secret_box.decrypt(channel.token_encrypted))
        await self.channels.delete(channel)
        forget_secret(channel.id)


# channel id → (sha256 of its webhook secret, monotonic time it was read). Telegram posts every update
# with the secret; reading it once a minute instead of per update keeps acknowledgements to one statement.
# A removed channel's webhook is deleted at Telegram; anything still in flight is stored, and its job,
# finding no channel, ends it.
_secret_hashes: dict[str, tuple[str | None, float]] = {}
SECRET_CACHE_SECONDS = 60.0
MAX_CACHED_SECRETS = 10_000


async def _secret_hash(uow: UnitOfWork, settings: Settings, channel_id: str) -> str | None:
    if channel_id == PLATFORM:
        return sha256_hex(platform_secret(settings)) if platform_token(settings) else None
    now = time.monotonic()
    cached = _secret_hashes.get(channel_id)
    if cached is not None and now - cached[1] < SECRET_CACHE_SECONDS:
        return cached[0]
    expected = await ChannelRepository(uow.session).webhook_secret_hash(channel_id)
    if len(_secret_hashes) >= MAX_CACHED_SECRETS:
        _secret_hashes.clear()
    _secret_hashes[channel_id] = (expected, now)
    return expected


def forget_secret(channel_id: str) -> None:
    _secret_hashes.pop(channel_id, None)


async def accept_update(
    uow: UnitOfWork,
    jobs: JobOutbox,
    settings: Settings,
    channel_id: str,
    secret: str | None,
    update: dict[str, Any],
) -> bool:
    """Store a webhook update (verified by its secret) with the job that answers it, in one transaction;
    False for a replay."""
    expected = await _secret_hash(uow, settings, channel_id)
    # The same 403 for an unknown channel and a wrong secret: nothing to learn by probing.
    if expected is None or secret is None or not hmac.compare_digest(sha256_hex(secret), expected):
        raise Forbidden("Invalid Telegram secret token.")
    update_id = update.get("update_id")
    if not isinstance(update_id, int):
        return False  # not an update: acknowledged so Telegram does not resend it
    return await store_event_with_job(
        uow,
        event_source(channel_id),
        str(update_id),
        update,
        UPDATE_JOB,
        lock=chat_lock(channel_id, update),
        channel_id=channel_id,
        update_id=update_id,
    )


def chat_lock(channel_id: str, update: dict[str, Any]) -> str | None:
    """One chat's updates are answered one at a time, in the order they came (as Telegram asks of bots);
    different chats in parallel. None (no order to keep) for an update without a chat."""
    for kind in ("message", "edited_message", "callback_query"):
        part = update.get(kind)
        if isinstance(part, dict):
            holder = part.get("message") if kind == "callback_query" else part
            chat = holder.get("chat") if isinstance(holder, dict) else None
            chat_id = chat.get("id") if isinstance(chat, dict) else None
            if isinstance(chat_id, int | str):
                return f"telegram:{channel_id}:{chat_id}"
    return None
