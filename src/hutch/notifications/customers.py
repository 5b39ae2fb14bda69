"""Telling an organisation's owners something, the ways each of them chose, and keeping a record of it."""

from __future__ import annotations

from dataclasses import dataclass

from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork
from hutch.notifications.models import SentNotification
from hutch.notifications.repository import NotificationRepository

NOTIFY_CHATS_JOB = "channels.notify_owners"  # run by the channels domain, which reaches the chats


@dataclass(frozen=True)
class Owner:
    user_id: str
    email: str
    wants_email: bool
    wants_chat: bool


async def owners(uow: UnitOfWork, org_id: str) -> list[Owner]:
    """The org's owners with their preferences (both ways when they never chose)."""
    rows = await NotificationRepository(uow.session).owners_with_preferences(org_id)
    return [
        Owner(uid, email, wants_email is not False, wants_chat is not False)
        for uid, email, wants_email, wants_chat in rows
    ]


def record(uow: UnitOfWork, org_id: str, user_id: str, kind: str, channel: str, summary: str) -> None:
    NotificationRepository(uow.session).add_sent(
        SentNotification(
            id=new_id("ntf"),
            org_id=org_id,
            user_id=user_id,
            kind=kind,
            channel=channel,
            summary=summary[:300],
        )
    )
