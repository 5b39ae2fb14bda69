"""A local LiveKit server API: the Twirp RoomService over HTTP with protobuf bodies, as the SDK speaks it.

Requests must carry a JWT signed with the server's API secret whose ``video`` grant allows the call
(``roomList``, ``roomCreate`` for deleting, ``roomAdmin`` for the room's data); rooms exist while a test says
they do. :func:`signed_webhook` makes the webhook LiveKit would post: the event as JSON, with a JWT whose
``sha256`` claim is the body's hash, made with the SDK's own ``AccessToken``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from livekit import api
from livekit.protocol import models, room, webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

API_KEY = "APIfakeKey123"
API_SECRET = "fake-livekit-secret-of-a-decent-length-0123456789"


@dataclass
class RecordedCall:
    method: str
    request: Message
    grants: dict[str, Any]


@dataclass
class FakeRoom:
    name: str
    created_at: int = field(default_factory=lambda: int(time.time()))
    data: list[bytes] = field(default_factory=list)  # messages sent to the room


def _twirp_error(status: int, code: str, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


class FakeLiveKitServer(BackgroundServer):
    # method → (request type, the video grant it needs)
    METHODS: dict[str, tuple[type[Message], str]] = {
        "ListRooms": (room.ListRoomsRequest, "roomList"),
        "DeleteRoom": (room.DeleteRoomRequest, "roomCreate"),
        "SendData": (room.SendDataRequest, "roomAdmin"),
    }

    def __init__(self, key: str = API_KEY, secret: str = API_SECRET) -> None:
        self.key, self.secret = key, secret
        self.rooms: dict[str, FakeRoom] = {}
        self.calls: list[RecordedCall] = []
        app = Starlette(routes=[Route("/twirp/livekit.RoomService/{method}", self._call, methods=["POST"])])
        super().__init__(app)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    def reset(self) -> None:
        self.rooms.clear()
        self.calls.clear()

    def open_room(self, name: str) -> FakeRoom:
        self.rooms[name] = FakeRoom(name)
        return self.rooms[name]

    def called(self, method: str) -> list[Message]:
        return [c.request for c in self.calls if c.method == method]

    async def _call(self, request: Request) -> Response:
        method = request.path_params["method"]
        if method not in self.METHODS:
            return _twirp_error(404, "bad_route", f"no handler for {method}")
        if request.headers.get("content-type") != "application/protobuf":
            return _twirp_error(400, "malformed", "expected application/protobuf")
        auth = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), self.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return _twirp_error(401, "unauthenticated", "invalid token")
        request_type, grant = self.METHODS[method]
        grants = claims.get("video") or {}
        if claims.get("iss") != self.key or not grants.get(grant):
            return _twirp_error(403, "permission_denied", f"needs the {grant} grant")
        message = request_type.FromString(await request.body())
        self.calls.append(RecordedCall(method, message, grants))
        answer = getattr(self, f"_{method}")(message)
        return Response(answer.SerializeToString(), media_type="application/protobuf")

    def _ListRooms(self, message: room.ListRoomsRequest) -> room.ListRoomsResponse:
        names = set(message.names) or set(self.rooms)
        return room.ListRoomsResponse(
            rooms=[
                models.Room(sid=f"RM_{r.name}", name=r.name, creation_time=r.created_at)
                for r in self.rooms.values()
                if r.name in names
            ]
        )

    def _DeleteRoom(self, message: room.DeleteRoomRequest) -> room.DeleteRoomResponse:
        self.rooms.pop(message.room, None)
        return room.DeleteRoomResponse()

    def _SendData(self, message: room.SendDataRequest) -> room.SendDataResponse:
        if message.room in self.rooms:
            self.rooms[message.room].data.append(message.data)
        return room.SendDataResponse()


_event_ids = itertools.count(1)


def room_event(
    kind: str,
    room_name: str,
    identity: str | None = None,
    *,
    at: int | None = None,
    event_id: str | None = None,
) -> webhook.WebhookEvent:
    """A webhook event as LiveKit sends it: participant_joined, participant_left, room_finished."""
    event = webhook.WebhookEvent(
        event=kind,
        id=event_id or f"EV_{next(_event_ids)}_{uuid.uuid4().hex[:8]}",
        created_at=at if at is not None else int(time.time()),
        room=models.Room(sid=f"RM_{room_name}", name=room_name),
    )
    if identity is not None:
        event.participant.CopyFrom(models.ParticipantInfo(sid=f"PA_{identity}", identity=identity))
    return event


def signed_webhook(
    event: webhook.WebhookEvent, key: str = API_KEY, secret: str = API_SECRET, *, ttl_seconds: int = 600
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of LiveKit's POST for ``event``."""
    body = MessageToJson(event).encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = api.AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(seconds=ttl_seconds)).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}
