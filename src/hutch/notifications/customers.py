"""Telling an organisation's owners something, the ways each of them chose, and keeping a record of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork
from hutch.i18n import languages, use_language
from hutch.notifications.models import NoticeKind, SentNotification
from hutch.notifications.repository import NotificationRepository
from hutch.settings import Settings

NOTIFY_CHATS_JOB = "channels.notify_owners"  # run by the channels domain, which reaches the chats


@dataclass(frozen=True)
class Owner:
    user_id: str
    email: str
    wants_email: bool
    wants_telegram: bool
    wants_whatsapp: bool
    language: str | None = None  # their chosen language, for emails

    @property
    def wants_chat(self) -> bool:
        return self.wants_telegram or self.wants_whatsapp

    def wants(self, channel: str) -> bool:
        """Whether this notice may reach them by ``channel`` (email, telegram or whatsapp)."""
        ways = {"email": self.wants_email, "telegram": self.wants_telegram, "whatsapp": self.wants_whatsapp}
        return ways.get(channel, False)


async def owners(uow: UnitOfWork, org_id: str, kind: str = "") -> list[Owner]:
    """Who hears a notice of ``kind``, with how each wants it: their choice for its kind, else their
    general preference (every way when they never chose). The org's owners, except for a conversation
    waiting for a person, which every member may answer."""
    notice = NoticeKind.of(kind)
    rows = await NotificationRepository(uow.session).owners_with_preferences(
        org_id, notice.value if notice else None, every_member=notice is NoticeKind.NEEDS_HUMAN
    )
    found = []
    for uid, email, general_email, general_chat, by_email, by_telegram, by_whatsapp, language in rows:
        chat = general_chat is not False
        found.append(
            Owner(
                uid,
                email,
                wants_email=by_email if by_email is not None else general_email is not False,
                wants_telegram=by_telegram if by_telegram is not None else chat,
                wants_whatsapp=by_whatsapp if by_whatsapp is not None else chat,
                language=language,
            )
        )
    return found


def in_each_language(settings: Settings, say: Callable[[], str]) -> dict[str, str]:
    """What ``say()`` says in every language Hutch speaks here: a chat notice whose owners each read their
    own (the job that sends it picks each one's)."""
    texts = {}
    for language in languages(settings):
        with use_language(settings, language):
            texts[language] = say()
    return texts


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
