"""LiveKit through its server SDK (``livekit-api``): access tokens, webhook checks and the room service."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from livekit import api

from hutch.core.errors import ServiceUnavailable, Unauthorized
from hutch.settings import Settings

VOICE_AGENT_NAME = "hutch"  # the name `hutch voice-agent` registers under; tokens dispatch it to the room


class VoiceNotConfigured(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Voice is not set up on this service: the operator sets HUTCH_LIVEKIT_URL, HUTCH_LIVEKIT_API_KEY "
            "and HUTCH_LIVEKIT_API_SECRET."
        )


@dataclass(frozen=True)
class LiveKitConfig:
    url: str  # what clients connect to
    api_url: str  # the server API
    key: str
    secret: str


def livekit_config(settings: Settings) -> LiveKitConfig:
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        raise VoiceNotConfigured()
    api_url = settings.livekit_api_url or settings.livekit_url.replace("wss://", "https://", 1).replace(
        "ws://", "http://", 1
    )
    return LiveKitConfig(
        settings.livekit_url,
        api_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
    )


def room_token(
    config: LiveKitConfig, *, room: str, identity: str, name: str, ttl: timedelta, metadata: dict[str, str]
) -> str:
    """A token to join ``room`` only, as ``identity``; the room gets the Hutch voice agent dispatched."""
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    dispatch = api.RoomAgentDispatch(agent_name=VOICE_AGENT_NAME, metadata=json.dumps(metadata))
    return (
        api.AccessToken(config.key, config.secret)
        .with_identity(identity)
        .with_name(name)
        .with_ttl(ttl)
        .with_grants(grants)
        .with_metadata(json.dumps(metadata))
        .with_room_config(api.RoomConfiguration(agents=[dispatch]))
        .to_jwt()
    )


def verify_webhook(config: LiveKitConfig, body: bytes, authorization: str | None) -> api.WebhookEvent:
    """The event, if LiveKit signed it: a JWT with our key whose ``sha256`` claim is the body's hash."""
    if not authorization:
        raise Unauthorized("Missing LiveKit webhook signature.")
    receiver = api.WebhookReceiver(api.TokenVerifier(config.key, config.secret))
    try:
        return receiver.receive(body.decode(), authorization.removeprefix("Bearer "))
    except Exception:  # noqa: BLE001 - the SDK raises bare Exceptions (and jwt's) for any bad signature
        raise Unauthorized("Invalid LiveKit webhook signature.") from None


class LiveKitRooms:
    """The room service, for the session watchdog: which rooms still exist, warnings, ending a room."""

    def __init__(self, config: LiveKitConfig) -> None:
        self._config = config
        self._client: api.LiveKitAPI | None = None

    @property
    def _api(self) -> api.LiveKitAPI:
        # Built on first use, inside the event loop its HTTP session then belongs to; kept for the process.
        if self._client is None:
            self._client = api.LiveKitAPI(self._config.api_url, self._config.key, self._config.secret)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def existing(self, rooms: list[str]) -> set[str]:
        listed = await self._api.room.list_rooms(api.ListRoomsRequest(names=rooms))
        return {room.name for room in listed.rooms}

    async def warn(self, room: str, seconds_left: int) -> None:
        """Tell the room (the voice agent says it) that time is nearly out."""
        payload = json.dumps({"type": "time_warning", "seconds_left": seconds_left}).encode()
        await self._api.room.send_data(
            api.SendDataRequest(room=room, data=payload, kind=api.DataPacket.RELIABLE, topic="hutch")
        )

    async def end(self, room: str) -> None:
        """Close the room for everyone in it; a room already gone is fine."""
        try:
            await self._api.room.delete_room(api.DeleteRoomRequest(room=room))
        except api.TwirpError as exc:
            if exc.status != 404:
                raise
