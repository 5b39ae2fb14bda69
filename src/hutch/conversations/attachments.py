"""Files sent with messages, as the API and the dashboard show them."""

from __future__ import annotations

from starlette.responses import Response

from hutch.conversations.models import AttachmentKind, MessageAttachment
from hutch.conversations.schemas import AttachmentOut

# Shown in the browser (images, audio) rather than downloaded; anything else downloads.
INLINE = (AttachmentKind.IMAGE, AttachmentKind.AUDIO)


def attachment_url(attachment: MessageAttachment) -> str:
    return f"/api/v1/conversations/{attachment.conversation_id}/attachments/{attachment.id}"


def attachment_out(attachment: MessageAttachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        kind=attachment.kind,
        content_type=attachment.content_type,
        filename=attachment.filename,
        size_bytes=attachment.size_bytes,
        url=attachment_url(attachment),
        transcript=attachment.text if attachment.kind is AttachmentKind.AUDIO else None,
        duration_seconds=(
            float(attachment.duration_seconds) if attachment.duration_seconds is not None else None
        ),
    )


def attachments_out(found: dict[str, list[MessageAttachment]], message_id: str) -> list[AttachmentOut]:
    return [attachment_out(a) for a in found.get(message_id, ())]


def disposition(attachment: MessageAttachment) -> str:
    """``inline`` for images and audio, ``attachment`` for the rest, with a safe file name."""
    safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in attachment.filename)[:150] or "file"
    how = "inline" if attachment.kind in INLINE else "attachment"
    return f'{how}; filename="{safe}"'


def served_type(attachment: MessageAttachment) -> str:
    """What the browser is told the bytes are: a file sent as a document is never rendered as HTML."""
    media_type = attachment.content_type.split(";")[0].strip().lower()
    if attachment.kind is AttachmentKind.DOCUMENT and media_type != "application/pdf":
        return "text/plain; charset=utf-8" if media_type.startswith("text/") else "application/octet-stream"
    return attachment.content_type


def file_response(attachment: MessageAttachment, *, cross_origin: bool = False) -> Response:
    """The file's bytes for a browser, never run as a page; ``cross_origin``: shown on other sites' pages
    (the widget's thumbnails on the customer's site)."""
    headers = {
        "Content-Disposition": disposition(attachment),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if cross_origin:
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return Response(attachment.data, media_type=served_type(attachment), headers=headers)
