"""Agent avatars: an upload is recognised by its bytes (not its name), decoded, shrunk and re-encoded.

Re-encoding drops whatever rode along in the file (metadata, trailing data, a script disguised as an
image); a picture whose header claims more pixels than ``MAX_PIXELS`` is refused before it is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent, AgentAvatar
from hutch.core.errors import InvalidField, PayloadTooLarge, UnsupportedMediaType

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 6,000 by 6,000 photo fits; a decompression bomb does not
SIDE = 512  # avatars are stored at most this wide and high
ACCEPTED = "JPEG, PNG or WebP"


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    content_type: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The image format the bytes start with, whatever the file was called."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def reencode(data: bytes) -> EncodedImage:
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"Avatars can be up to {MAX_BYTES // (1024 * 1024)} MB; this file is larger.")
    expected = sniff(data)
    if expected is None:
        raise UnsupportedMediaType(f"Avatars must be {ACCEPTED} images; this file is not one.")
    too_big = InvalidField("file", f"the picture has more than {MAX_PIXELS:,} pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[expected])
            if image.width * image.height > MAX_PIXELS:
                raise too_big
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_big from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidField(
            "file", f"this {expected} image cannot be read ({exc.__class__.__name__})"
        ) from None
    picture: Image.Image = image.convert("RGBA") if image.mode not in ("RGB", "RGBA") else image
    picture.thumbnail((SIDE, SIDE))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return EncodedImage(out.getvalue(), "image/png", picture.width, picture.height)


def as_jpeg(data: bytes) -> bytes:
    """A stored avatar (a PNG made by :func:`reencode`) as a JPEG on white, for places that take only JPEG
    (a Telegram bot's profile photo)."""
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        picture = image.convert("RGBA")
    flat = Image.new("RGB", picture.size, "white")
    flat.paste(picture, mask=picture.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=90)
    return out.getvalue()


class Avatars:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, agent: Agent) -> AgentAvatar | None:
        return await self.session.get(AgentAvatar, agent.id)

    async def put(self, agent: Agent, upload: bytes) -> AgentAvatar:
        image = reencode(upload)
        avatar = await self.get(agent)
        if avatar is None:
            avatar = AgentAvatar(agent_id=agent.id, org_id=agent.org_id)
            self.session.add(avatar)
        avatar.data, avatar.content_type = image.data, image.content_type
        avatar.width, avatar.height = image.width, image.height
        await self.session.flush()
        return avatar

    async def delete(self, agent: Agent) -> bool:
        avatar = await self.get(agent)
        if avatar is None:
            return False
        await self.session.delete(avatar)
        return True
