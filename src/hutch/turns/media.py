"""Files people send in chat (photos, voice notes, PDFs and text files), read before a turn begins.

A channel says what it received (:class:`Received`: the type, the name, how to download it) and
:class:`MediaReader` checks it against the plan and the operator's cap, downloads it, transcribes a voice
note and reads a document's text. All of that waits on the network, so the reader ends the caller's
transaction first (no connection is held meanwhile); the files are then stored by the turn's phase 1, with
the message (``TurnFlow.begin(..., media=...)``).

What can happen (docs/media.md):

- ``refusal``: a type nobody may send (an executable), a type the plan leaves out, a file over the size cap,
  a download that failed, an unreadable document — the person gets the reason; nothing is stored.
- ``unanswered``: a voice note that cannot be transcribed (not set up, the plan's minutes used up, the
  endpoint failing) — it is stored with its message and answered with the reason, without a model and
  without cost.
- otherwise the turn runs: an image goes to the model as image content (a model the catalog does not mark
  ``vision`` is not asked: see ``NO_VISION``), a voice note's transcript is the message, a document's text
  joins the prompt for that turn.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum

import structlog
from pydantic_ai.messages import BinaryContent

from hutch.billing.plans import Plan
from hutch.billing.quotas import Quotas
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.models import AttachmentKind, Message, MessageAttachment
from hutch.core.ids import new_id
from hutch.core.quota import month_start
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.engine.transcription import TranscriptionFailed, TranscriptionGateway
from hutch.i18n import N_, _
from hutch.knowledge.chunking import count_tokens
from hutch.knowledge.parsing import UnreadableDocument, kind_of, parse

log = structlog.get_logger(__name__)

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
MB = 1024 * 1024
# Bytes per second of a voice note when the channel and the endpoint do not say (Opus at about 16 kbit/s).
AUDIO_BYTES_PER_SECOND = 2000
MAX_STORED_TEXT = 200_000  # characters of a document's text kept with it
WORDS = {
    AttachmentKind.IMAGE: N_("images"),
    AttachmentKind.AUDIO: N_("voice notes"),
    AttachmentKind.DOCUMENT: N_("files"),
}

# Said to the person in the language of the moment: translated where used (``_(NO_VISION)``).
NO_VISION = N_(
    "This agent's model cannot see images; please describe what is in the picture in words, "
    "or ask the assistant's owner to choose a model that reads images."
)
VOICE_NOT_SET_UP = N_(
    "I cannot listen to voice notes here: voice transcription is not set up. Please type your message."
)
VOICE_OVER_LIMIT = N_(
    "I cannot listen to more voice notes this month: this assistant's transcription minutes are used up. "
    "Please type your message."
)
VOICE_FAILED = N_(
    "Sorry, I could not understand that voice note just now. Please try again or type your message."
)
NOT_DOWNLOADED = N_("Sorry, I could not download the file you sent. Please try again.")
EMPTY_VOICE = N_("I could not hear any words in that voice note. Please try again or type your message.")


class DownloadFailed(Exception):
    """The channel could not hand over the file (its API or the URL failed); the message says why."""


class TooLarge(Exception):
    """The file is larger than the bytes allowed."""


# Given the most bytes allowed, the file's bytes (raises TooLarge above it, DownloadFailed on failure).
Download = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True)
class Received:
    """A file a channel received, not yet downloaded."""

    content_type: str
    filename: str
    download: Download
    size: int | None = None  # declared by the channel, when it says
    duration: float | None = None  # seconds of audio, when the channel says


@dataclass
class ReadFile:
    """A file read and ready to store with its message."""

    kind: AttachmentKind
    content_type: str
    filename: str
    data: bytes
    text: str | None = None  # a voice note's transcript or a document's text
    duration_seconds: float | None = None
    transcribed: bool = False


class Refused(StrEnum):
    """Why a file was refused: an API answers each with its own status (413, 415, 400)."""

    TYPE = "type"  # a type nobody may send, or one the plan leaves out
    SIZE = "size"
    UNREADABLE = "unreadable"  # a document without text Hutch can read
    DOWNLOAD = "download"


@dataclass
class ReadMedia:
    files: list[ReadFile] = field(default_factory=list)
    text: str = ""  # the message as stored: the caption, or a voice note's transcript
    refusal: str | None = None  # answered at once: nothing stored
    refused: Refused | None = None  # why, with a refusal
    unanswered: str | None = None  # stored with the files, answered with this without a model
    error: str | None = None  # why, when something failed (kept with the answer)


def kind_for(content_type: str, filename: str) -> AttachmentKind | None:
    """What a file is to Hutch, or None for a type nobody may send."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in IMAGE_TYPES:
        return AttachmentKind.IMAGE
    if media_type.startswith("audio/") or media_type == "video/ogg":
        return AttachmentKind.AUDIO
    if kind_of(filename, media_type or None) is not None:
        return AttachmentKind.DOCUMENT
    return None


def default_filename(kind: str, content_type: str) -> str:
    """``image.jpg``, ``voice.ogg``...: for channels that send no name."""
    media_type = content_type.split(";")[0].strip().lower()
    extension = {"audio/ogg": ".ogg", "image/jpeg": ".jpg", "audio/mpeg": ".mp3"}.get(media_type)
    extension = extension or mimetypes.guess_extension(media_type) or ""
    return {"audio": "voice", "image": "image"}.get(kind, "file") + extension


def placeholder(files: Sequence[ReadFile]) -> str:
    """The stored text of a message that is only files (no caption)."""
    names = []
    for file in files:
        if file.kind is AttachmentKind.IMAGE:
            names.append("[image]")
        elif file.kind is AttachmentKind.AUDIO:
            names.append("[voice note]")
        else:
            names.append(f"[file: {file.filename}]")
    return " ".join(names)


def refused_type(plan: Plan) -> str:
    allowed = [_(WORDS[AttachmentKind(kind)]) for kind in plan.limits.attachment_types]
    if not allowed:
        return _("I can only read text messages here. Please type your question.")
    return _("I cannot open that kind of file. I can read {kinds}; or type your question.").format(
        kinds=_listed(allowed)
    )


def not_on_plan(kind: AttachmentKind, plan: Plan) -> str:
    allowed = [_(WORDS[AttachmentKind(k)]) for k in plan.limits.attachment_types]
    if allowed:
        return _(
            "This assistant does not accept {kind}. I can read {kinds}. Please type your message."
        ).format(kind=_(WORDS[kind]), kinds=_listed(allowed))
    return _("This assistant does not accept {kind}. Please type your message.").format(kind=_(WORDS[kind]))


def too_large(limit_bytes: int) -> str:
    return _("That file is too large: I can read files up to {size} MB.").format(size=limit_bytes // MB)


def _listed(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return _("{first} and {last}").format(first=", ".join(words[:-1]), last=words[-1])


def max_bytes(plan: Plan, operator_mb: int) -> int:
    """The largest file allowed: the plan's ``attachment_mb`` under the operator's cap."""
    plan_mb = plan.limits.attachment_mb
    return min(operator_mb, plan_mb if plan_mb is not None else operator_mb) * MB


class MediaReader:
    def __init__(
        self, uow: UnitOfWork, resources: WorkerResources, transcription: TranscriptionGateway | None
    ) -> None:
        self.uow = uow
        self.resources = resources
        self.settings = resources.settings
        self.transcription = transcription

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> MediaReader:
        return cls(uow, resources, resources.transcription)

    async def read(self, org_id: str, caption: str, received: Sequence[Received]) -> ReadMedia:
        """Check, download, transcribe and read what was sent. Ends the caller's transaction (committing what
        it wrote) before it waits on the network."""
        plan = await Quotas(self.uow.session, self.resources.plans).plan_of(org_id)
        limit = max_bytes(plan, self.settings.attachment_max_mb)
        kinds: list[AttachmentKind] = []
        for file in received:
            kind = kind_for(file.content_type, file.filename)
            if kind is None:
                return ReadMedia(refusal=refused_type(plan), refused=Refused.TYPE)
            if kind.value not in plan.limits.attachment_types:
                return ReadMedia(refusal=not_on_plan(kind, plan), refused=Refused.TYPE)
            if file.size is not None and file.size > limit:
                return ReadMedia(refusal=too_large(limit), refused=Refused.SIZE)
            kinds.append(kind)
        minutes_left = await self._minutes_left(org_id, plan) if AttachmentKind.AUDIO in kinds else None
        await self.uow.checkpoint()  # nothing is held while files download and voice notes are transcribed
        media = ReadMedia(text=caption.strip())
        for file, kind in zip(received, kinds, strict=True):
            try:
                data = await file.download(limit)
            except TooLarge:
                return ReadMedia(refusal=too_large(limit), refused=Refused.SIZE)
            except DownloadFailed as exc:
                log.warning("a file sent in chat could not be downloaded", error=str(exc))
                return ReadMedia(refusal=_(NOT_DOWNLOADED), refused=Refused.DOWNLOAD)
            if len(data) > limit:
                return ReadMedia(refusal=too_large(limit), refused=Refused.SIZE)
            read = ReadFile(kind, file.content_type, file.filename, data)
            if kind is AttachmentKind.DOCUMENT:
                try:
                    read.text = document_text(data, file.filename, file.content_type)
                except UnreadableDocument as exc:
                    return ReadMedia(
                        refusal=_("I could not read {name}: {reason}").format(name=file.filename, reason=exc),
                        refused=Refused.UNREADABLE,
                    )
            elif kind is AttachmentKind.AUDIO:
                await self._transcribe(read, file, minutes_left, media)
            media.files.append(read)
        if not media.text:
            media.text = placeholder(media.files)
        return media

    async def _minutes_left(self, org_id: str, plan: Plan) -> float | None:
        """Seconds of transcription the plan leaves this month; None: unlimited."""
        limit = plan.limits.transcription_minutes_per_month
        if limit is None:
            return None
        since = datetime.combine(month_start(datetime.now(UTC)), time.min, UTC)
        used = await AttachmentRepository(self.uow.session).transcribed_seconds(org_id, since)
        return limit * 60 - used

    async def _transcribe(
        self, read: ReadFile, file: Received, seconds_left: float | None, media: ReadMedia
    ) -> None:
        if self.transcription is None:
            media.unanswered = media.unanswered or _(VOICE_NOT_SET_UP)
            return
        if seconds_left is not None and seconds_left <= 0:
            media.unanswered = media.unanswered or _(VOICE_OVER_LIMIT)
            return
        try:
            transcript = await self.transcription.transcribe(read.data, read.filename, read.content_type)
        except TranscriptionFailed as exc:
            log.warning("a voice note could not be transcribed", error=str(exc))
            media.unanswered = media.unanswered or _(VOICE_FAILED)
            media.error = f"transcription failed: {exc}"
            return
        read.text, read.transcribed = transcript.text, True
        read.duration_seconds = round(
            transcript.seconds or file.duration or len(read.data) / AUDIO_BYTES_PER_SECOND, 2
        )
        if not transcript.text:
            media.unanswered = media.unanswered or _(EMPTY_VOICE)
            return
        # The transcript is what the person said: the message's text (after a caption, if any).
        media.text = f"{media.text}\n\n{transcript.text}".strip() if media.text else transcript.text


def document_text(data: bytes, filename: str, content_type: str) -> str:
    """A PDF's or text file's text, as knowledge uploads read it."""
    kind = kind_of(filename, content_type.split(";")[0].strip().lower() or None)
    if kind is None:
        raise UnreadableDocument(_("this kind of file has no text I can read"))
    sections = parse(data, kind)
    text = "\n\n".join(
        (" / ".join(s.headings) + "\n" + s.text) if s.headings else s.text for s in sections
    ).strip()
    if not text:
        raise UnreadableDocument(_("it has no text (a scanned PDF, perhaps)"))
    return text[:MAX_STORED_TEXT]


def fit_text(text: str, budget: int) -> str:
    """``text`` cut to about ``budget`` tokens, with a note saying it was cut."""
    if count_tokens(text) <= budget:
        return text
    # Tokens are about four characters: halve the cut until it fits.
    cut = max(budget * 4, 1)
    while cut > 1 and count_tokens(text[:cut]) > budget:
        cut = cut * 3 // 4
    return text[:cut] + "\n[... the rest of the file is not shown]"


def stored_file(file: ReadFile, message: Message, conversation_id: str) -> MessageAttachment:
    """The row keeping ``file`` with its message."""
    return MessageAttachment(
        id=new_id("att"),
        org_id=message.org_id,
        message_id=message.id,
        conversation_id=conversation_id,
        kind=file.kind,
        content_type=file.content_type[:200],
        filename=file.filename[:300],
        size_bytes=len(file.data),
        data=file.data,
        text=file.text,
        duration_seconds=file.duration_seconds,
        transcribed=file.transcribed,
        created_at=datetime.now(UTC),
    )


def read_again(attachment: MessageAttachment) -> ReadFile:
    """A stored file as a turn resumed after phase 1 needs it."""
    return ReadFile(
        attachment.kind,
        attachment.content_type,
        attachment.filename,
        attachment.data,
        attachment.text,
        float(attachment.duration_seconds) if attachment.duration_seconds is not None else None,
        attachment.transcribed,
    )


def images_of(files: Sequence[ReadFile]) -> list[BinaryContent]:
    """The images of a turn, as image content for the model's user message."""
    return [
        BinaryContent(data=f.data, media_type=f.content_type.split(";")[0].strip().lower())
        for f in files
        if f.kind is AttachmentKind.IMAGE
    ]


def prompt_with_documents(prompt: str | None, files: Sequence[ReadFile], budget: int) -> str | None:
    """The prompt followed by the text of the documents sent with it, within ``budget`` tokens in all."""
    documents = [f for f in files if f.kind is AttachmentKind.DOCUMENT and f.text]
    if not documents:
        return prompt
    share = max(budget // len(documents), 1)
    blocks = [
        f"[The person attached {f.filename}; its text follows.]\n{fit_text(f.text or '', share)}"
        for f in documents
    ]
    return "\n\n".join([prompt or "", *blocks]).strip()
