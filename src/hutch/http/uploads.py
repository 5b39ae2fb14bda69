"""A file sent with a chat message as a multipart upload: the web widget, the dashboard chat and
``POST /api/v1/agents/{id}/chat`` take one ``file`` next to their text fields.

The upload is parsed here (its size checked against the operator's cap before the body is read) and handed
to :class:`hutch.turns.media.MediaReader` as a :class:`Received` whose download returns the bytes already
received, so the plan's rules and the texts people see are those of Telegram and WhatsApp (docs/media.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from hutch.core.errors import BadRequest, HutchError, PayloadTooLarge, UnsupportedMediaType
from hutch.settings import Settings
from hutch.turns.media import MB, Download, ReadMedia, Received, Refused, TooLarge, default_filename, kind_for
from hutch.turns.media import too_large as too_large_text

Model = TypeVar("Model", bound=BaseModel)
# Room for the form's boundaries and text fields around the file itself.
FORM_OVERHEAD = 64 * 1024
MULTIPART = "multipart/form-data"


class LengthRequired(HutchError):
    status_code = 411


@dataclass
class ChatForm:
    """A multipart chat message: its text fields, and the file, unless it was refused unread."""

    fields: dict[str, str] = field(default_factory=dict)
    file: Received | None = None
    refused: ReadMedia | None = None  # larger than anyone may send: refused before the body was read


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(MULTIPART)


def validated(model: type[Model], data: bytes | dict[str, Any]) -> Model:
    """``data`` (a JSON body or a form's fields) as ``model``; a 422 in FastAPI's list form otherwise."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
        ) from None


async def chat_form(request: Request, settings: Settings) -> ChatForm:
    """The text fields and the ``file`` of a multipart chat message. A body declared larger than the
    operator's cap is not read: it is refused as too large, as a messenger's file would be."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise LengthRequired("Send the upload with its Content-Length.")
    cap = settings.attachment_max_mb * MB
    if int(declared) > cap + FORM_OVERHEAD:
        return ChatForm(refused=ReadMedia(refusal=too_large_text(cap), refused=Refused.SIZE))
    form = await request.form(max_files=1, max_fields=10)
    fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        return ChatForm(fields)
    return ChatForm(fields, received_upload(upload))


def received_upload(upload: UploadFile) -> Received:
    """An uploaded file as a channel's received file: its download reads what the request carried."""
    content_type = upload.content_type or "application/octet-stream"
    kind = kind_for(content_type, upload.filename or "")
    filename = upload.filename or default_filename(kind.value if kind else "file", content_type)

    async def download(max_bytes: int) -> bytes:
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooLarge()
        return data

    reader: Download = download
    return Received(content_type, filename[:300], reader, size=upload.size)


def refusal_error(media: ReadMedia) -> HutchError:
    """A refused file as an API answers it: 413 over the size, 415 a type not accepted, 400 otherwise;
    the detail is the text a messenger would have received."""
    detail = media.refusal or "That file cannot be read."
    if media.refused is Refused.SIZE:
        return PayloadTooLarge(detail)
    if media.refused is Refused.TYPE:
        return UnsupportedMediaType(detail)
    return BadRequest(detail)
