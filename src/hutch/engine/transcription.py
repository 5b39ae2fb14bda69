"""Voice notes to text through an OpenAI-compatible ``/audio/transcriptions`` endpoint, with the official
``openai`` SDK, at the base URL the operator configures (``HUTCH_TRANSCRIPTION_BASE_URL``, ``_API_KEY``,
``_MODEL``). Built once at start-up; None when no endpoint is configured (voice notes are then answered
"not set up")."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from openai import APIError, AsyncOpenAI, DefaultAioHttpClient

from hutch.core.logging import redact_text
from hutch.settings import Settings


class TranscriptionFailed(Exception):
    """The endpoint did not transcribe the audio; the message says why (no secrets)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float | None  # the audio's length when the endpoint says (``duration`` or ``usage.seconds``)


class TranscriptionGateway:
    def __init__(self, settings: Settings) -> None:
        assert settings.transcription_base_url is not None
        key = settings.transcription_api_key
        self.model = settings.transcription_model
        self.client = AsyncOpenAI(
            api_key=key.get_secret_value() if key is not None else "not-needed",
            base_url=settings.transcription_base_url,
            timeout=settings.transcription_timeout_seconds,
            max_retries=1,
            http_client=DefaultAioHttpClient(timeout=settings.transcription_timeout_seconds),
        )

    async def transcribe(self, data: bytes, filename: str, content_type: str) -> Transcript:
        try:
            answer = await self.client.audio.transcriptions.create(
                model=self.model, file=(filename, data, content_type), response_format="json"
            )
        except (APIError, httpx.HTTPError, OSError) as exc:
            raise TranscriptionFailed(redact_text(f"{exc.__class__.__name__}: {exc}")[:500]) from None
        extra = answer.model_extra or {}
        seconds = extra.get("duration")
        usage = getattr(answer, "usage", None) or extra.get("usage")
        if seconds is None and usage is not None:
            seconds = usage.get("seconds") if isinstance(usage, dict) else getattr(usage, "seconds", None)
        return Transcript(
            answer.text.strip(), float(seconds) if isinstance(seconds, int | float | str) else None
        )

    async def close(self) -> None:
        await self.client.close()


def build_transcription(settings: Settings) -> TranscriptionGateway | None:
    return TranscriptionGateway(settings) if settings.transcription_base_url else None
