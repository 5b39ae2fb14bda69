"""A local OpenAI-compatible ``/v1/audio/transcriptions`` endpoint, speaking the real wire format.

Requests are ``multipart/form-data`` with a ``file`` part (the audio, its name and type) and ``model``
(optionally ``response_format``, ``language``, ``prompt``), behind ``Authorization: Bearer <key>``; the
answer is ``{"text": ...}`` (with ``usage: {"type": "duration", "seconds": N}`` as OpenAI adds for
whisper-1 when ``seconds`` is scripted), errors are OpenAI's ``{"error": {...}}``. Every request is recorded;
answers, delays and failures are scripted::

    fake = FakeTranscriptionServer()
    fake.start()
    fake.script(TranscriptReply(text="Hello there", seconds=4))
    AsyncOpenAI(base_url=fake.api_base, api_key="k").audio.transcriptions.create(model="whisper-1", file=...)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

MAX_FILE_BYTES = 25 * 1024 * 1024  # OpenAI's limit
FORMATS = frozenset({"json", "text", "verbose_json", "srt", "vtt"})


@dataclass
class TranscriptReply:
    text: str = "Hello from a voice note"
    seconds: float | None = None
    status: int = 200
    error: str | None = None
    delay: float = 0.0


@dataclass
class RecordedTranscription:
    model: str
    filename: str
    content_type: str
    data: bytes
    response_format: str
    authorization: str | None


@dataclass
class FakeTranscriptionState:
    script: list[TranscriptReply] = field(default_factory=list)
    requests: list[RecordedTranscription] = field(default_factory=list)
    default: TranscriptReply = field(default_factory=TranscriptReply)


def _error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)


class FakeTranscriptionServer(BackgroundServer):
    def __init__(self) -> None:
        self.state = FakeTranscriptionState()
        app = Starlette(routes=[Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])])
        super().__init__(app)

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def reset(self) -> None:
        self.state.script.clear()
        self.state.requests.clear()
        self.state.default = TranscriptReply()

    def script(self, *replies: TranscriptReply) -> None:
        self.state.script.extend(replies)

    @property
    def requests(self) -> list[RecordedTranscription]:
        return self.state.requests

    async def _transcribe(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(400, "Expected multipart/form-data")
        form = await request.form()
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, UploadFile):
            return _error(400, "Missing required parameter: 'file'.")
        if not isinstance(model, str) or not model:
            return _error(400, "Missing required parameter: 'model'.")
        response_format = str(form.get("response_format") or "json")
        if response_format not in FORMATS:
            return _error(400, f"Invalid value for 'response_format': {response_format}")
        data = await upload.read()
        self.state.requests.append(
            RecordedTranscription(
                model,
                upload.filename or "",
                upload.content_type or "",
                data,
                response_format,
                request.headers.get("authorization"),
            )
        )
        if len(data) > MAX_FILE_BYTES:
            return _error(413, "Maximum content size limit (26214400) exceeded")
        reply = self.state.script.pop(0) if self.state.script else self.state.default
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status >= 400:
            return _error(reply.status, reply.error or "The server had an error processing your request.")
        if response_format == "text":
            return Response(reply.text, media_type="text/plain")
        body: dict[str, Any] = {"text": reply.text}
        if reply.seconds is not None:
            body["usage"] = {"type": "duration", "seconds": reply.seconds}
        return JSONResponse(body)
