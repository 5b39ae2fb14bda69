"""API shapes of notification preferences and the record of notices sent."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from hutch.notifications.models import NoticeKind


class NoticeWays(BaseModel):
    """The ways one kind of notice reaches you."""

    kind: NoticeKind
    email: bool = True
    telegram: bool = True  # through the operator's bot, to the chat you linked
    whatsapp: bool = True  # to the WhatsApp number you linked


class NoticeChoice(NoticeWays):
    label: str  # what the notice is about, in words
    chosen: bool  # false: nothing chosen for this kind yet, so the general preference applies


class PreferencesUpdate(BaseModel):
    email: bool = True  # notices by email
    chat: bool = True  # notices in your linked Telegram or WhatsApp chat
    # Ways per kind of notice; each kind named here overrides the two above, the others follow them.
    # Left out: the choices per kind stay as they are. An empty list clears them.
    notices: list[NoticeWays] | None = Field(default=None, max_length=len(NoticeKind))

    @field_validator("notices")
    @classmethod
    def _each_kind_once(cls, value: list[NoticeWays] | None) -> list[NoticeWays] | None:
        if value is not None and len({n.kind for n in value}) != len(value):
            raise ValueError("name each kind of notice at most once")
        return value


class Preferences(BaseModel):
    email: bool = True
    chat: bool = True
    notices: list[NoticeChoice]  # every kind, in a fixed order


class SentOut(BaseModel):
    kind: str
    channel: str
    summary: str
    org_id: str
    sent_at: datetime


class SentList(BaseModel):
    items: list[SentOut]
