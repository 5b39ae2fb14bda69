"""What the channel routes answer, and how a channel is shown (the API and the dashboard alike)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from hutch.channels.models import Channel, ChannelType
from hutch.channels.webchat.service import AllowedOrigins


class ChannelOut(BaseModel):
    id: str
    type: str
    status: str
    bot_username: str | None  # Telegram
    link: str | None  # Telegram: the bot's t.me link
    token: str | None  # web chat: the widget's public token
    snippet: str | None  # web chat: the HTML to paste into the site
    allowed_origins: list[str]  # web chat: the sites that may embed it
    last_error: str | None
    created_at: datetime


class ChannelList(BaseModel):
    items: list[ChannelOut]


class WidgetOrigins(BaseModel):
    allowed_origins: AllowedOrigins = Field(min_length=1, max_length=20)


class DayCountOut(BaseModel):
    day: date
    channel: str
    inbound: int
    outbound: int


class ChannelUsage(BaseModel):
    items: list[DayCountOut]


def widget_snippet(base_url: str, token: str) -> str:
    return f'<script src="{base_url}/widget.js" data-hutch-widget="{token}" async></script>'


def channel_out(channel: Channel, base_url: str) -> ChannelOut:
    webchat = channel.type is ChannelType.WEBCHAT
    return ChannelOut(
        id=channel.id,
        type=channel.type.value,
        status=channel.status.value,
        bot_username=channel.username,
        link=f"https://t.me/{channel.username}" if channel.username else None,
        token=channel.external_id if webchat else None,
        snippet=widget_snippet(base_url, channel.external_id) if webchat else None,
        allowed_origins=list(channel.allowed_origins or []),
        last_error=channel.last_error,
        created_at=channel.created_at,
    )
