"""The notifications domain's services for routes and pages (jobs use ``NotificationSettings.of``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from hutch.http.dependencies import ResourcesDep, UoWDep
from hutch.notifications.preferences import NotificationSettings


async def notification_settings(uow: UoWDep, resources: ResourcesDep) -> NotificationSettings:
    return NotificationSettings.of(uow, resources)


NotificationSettingsDep = Annotated[NotificationSettings, Depends(notification_settings)]
