"""Your notification preferences (email, chat) and the notices Hutch sent you."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hutch.core.errors import Forbidden, Unauthorized, error_responses
from hutch.http.authz import CurrentUser
from hutch.http.dependencies import UoWDep
from hutch.notifications.models import NotificationPreference
from hutch.notifications.repository import NotificationRepository

router = APIRouter(prefix="/api/v1/users/me/notifications", tags=["notifications"])


class Preferences(BaseModel):
    email: bool = True  # notices by email
    chat: bool = True  # notices in your linked Telegram or WhatsApp chat


class SentOut(BaseModel):
    kind: str
    channel: str
    summary: str
    org_id: str
    sent_at: datetime


class SentList(BaseModel):
    items: list[SentOut]


@router.get("", response_model=Preferences, responses=error_responses(Unauthorized, Forbidden))
async def get_preferences(principal: CurrentUser, uow: UoWDep) -> Preferences:
    """How you hear about your organisations: runtime ready, payment failed, low balance, quota at 80% and
    100%. Both ways until you choose."""
    assert principal.user_id is not None
    found = await NotificationRepository(uow.session).preference_of(principal.user_id)
    return Preferences(email=found.email, chat=found.chat) if found else Preferences()


@router.put("", response_model=Preferences, responses=error_responses(Unauthorized, Forbidden))
async def set_preferences(body: Preferences, principal: CurrentUser, uow: UoWDep) -> Preferences:
    assert principal.user_id is not None
    preferences = NotificationRepository(uow.session)
    found = await preferences.preference_of(principal.user_id, for_update=True)
    if found is None:
        preferences.add_preference(
            NotificationPreference(user_id=principal.user_id, email=body.email, chat=body.chat)
        )
    else:
        found.email, found.chat = body.email, body.chat
    return body


@router.get("/sent", response_model=SentList, responses=error_responses(Unauthorized, Forbidden))
async def sent(
    principal: CurrentUser, uow: UoWDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> SentList:
    """The notices sent to you, newest first, and how."""
    assert principal.user_id is not None
    rows = await NotificationRepository(uow.session).sent_to(principal.user_id, limit)
    return SentList(items=[SentOut.model_validate(r, from_attributes=True) for r in rows])
