"""Your notification preferences (email, chat, and per kind of notice) and the notices Hutch sent you."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hutch.core.errors import Forbidden, Unauthorized, error_responses
from hutch.http.authz import CurrentUser
from hutch.notifications.dependencies import NotificationSettingsDep
from hutch.notifications.schemas import Preferences, PreferencesUpdate, SentList, SentOut

router = APIRouter(prefix="/api/v1/users/me/notifications", tags=["notifications"])


@router.get("", response_model=Preferences, responses=error_responses(Unauthorized, Forbidden))
async def get_preferences(principal: CurrentUser, service: NotificationSettingsDep) -> Preferences:
    """How you hear about your organisations: runtime ready, payment failed, low balance, quota at 80% and
    100%, a conversation needing a person. Every way until you choose; `notices` holds the ways of each
    kind (email, Telegram, WhatsApp), which override `email` and `chat` once chosen."""
    assert principal.user_id is not None
    return await service.read(principal.user_id)


@router.put("", response_model=Preferences, responses=error_responses(Unauthorized, Forbidden))
async def set_preferences(
    body: PreferencesUpdate, principal: CurrentUser, service: NotificationSettingsDep
) -> Preferences:
    """Choose the ways in general (`email`, `chat`) and, with `notices`, for each kind of notice (an
    unknown kind or a kind named twice is refused with 422 and nothing changes)."""
    assert principal.user_id is not None
    return await service.change(principal.user_id, body)


@router.get("/sent", response_model=SentList, responses=error_responses(Unauthorized, Forbidden))
async def sent(
    principal: CurrentUser,
    service: NotificationSettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SentList:
    """The notices sent to you, newest first, and how."""
    assert principal.user_id is not None
    rows = await service.sent_to(principal.user_id, limit)
    return SentList(items=[SentOut.model_validate(r, from_attributes=True) for r in rows])
