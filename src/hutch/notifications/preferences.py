"""How each person wants to hear from Hutch: in general (email, chat) and for each kind of notice (email,
Telegram, WhatsApp)."""

from __future__ import annotations

from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.notifications.models import (
    NoticeKind,
    NotificationChoice,
    NotificationPreference,
    SentNotification,
)
from hutch.notifications.repository import NotificationRepository
from hutch.notifications.schemas import NoticeChoice, Preferences, PreferencesUpdate


class NotificationSettings:
    def __init__(self, uow: UnitOfWork) -> None:
        self.preferences = NotificationRepository(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> NotificationSettings:
        return cls(uow)

    async def read(self, user_id: str) -> Preferences:
        general = await self.preferences.preference_of(user_id)
        email, chat = (general.email, general.chat) if general else (True, True)
        chosen = {c.kind: c for c in await self.preferences.choices_of(user_id)}
        notices = []
        for kind in NoticeKind:
            choice = chosen.get(kind.value)
            ways = (choice.email, choice.telegram, choice.whatsapp) if choice else (email, chat, chat)
            notices.append(
                NoticeChoice(
                    kind=kind,
                    label=kind.label,
                    email=ways[0],
                    telegram=ways[1],
                    whatsapp=ways[2],
                    chosen=choice is not None,
                )
            )
        return Preferences(email=email, chat=chat, notices=notices)

    async def change(self, user_id: str, update: PreferencesUpdate) -> Preferences:
        found = await self.preferences.preference_of(user_id, for_update=True)
        if found is None:
            self.preferences.add_preference(
                NotificationPreference(user_id=user_id, email=update.email, chat=update.chat)
            )
        else:
            found.email, found.chat = update.email, update.chat
        if update.notices is not None:
            await self.preferences.replace_choices(
                user_id,
                [
                    NotificationChoice(
                        user_id=user_id,
                        kind=n.kind.value,
                        email=n.email,
                        telegram=n.telegram,
                        whatsapp=n.whatsapp,
                    )
                    for n in update.notices
                ],
            )
        else:
            await self.preferences.session.flush()
        return await self.read(user_id)

    async def sent_to(self, user_id: str, limit: int) -> list[SentNotification]:
        return await self.preferences.sent_to(user_id, limit)
