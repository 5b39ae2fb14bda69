"""The channels domain's services for routes and pages (jobs use ``TelegramChannels.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.channels.telegram.managed import ManagedBots
from hutch.channels.telegram.service import TelegramChannels
from hutch.http.dependencies import ResourcesDep, UoWDep

# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop.


async def telegram_channels(uow: UoWDep, resources: ResourcesDep) -> TelegramChannels:
    return TelegramChannels.of(uow, resources)


TelegramChannelsDep = Annotated[TelegramChannels, Depends(telegram_channels)]


async def managed_bots(uow: UoWDep, resources: ResourcesDep) -> ManagedBots:
    return ManagedBots.of(uow, resources)


ManagedBotsDep = Annotated[ManagedBots, Depends(managed_bots)]
