"""Agent avatars: recognised by their bytes, re-encoded, size-limited, and kept to their org."""

from __future__ import annotations

import io
import struct
import zlib

from httpx import AsyncClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import AgentAvatar
from hutch.settings import Settings
from tests.factories import create_account


def picture(fmt: str, size: tuple[int, int] = (1024, 768), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, format=fmt, **save)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb's trick)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


async def test_an_avatar_is_reencoded_shrunk_and_served(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Ada"}, headers=owner.headers)).json()
    url = f"/api/v1/agents/{agent['id']}/avatar"
    assert (await client.get(url, headers=owner.headers)).status_code == 404
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera maker: metadata that must not survive
    for fmt, upload in (
        ("JPEG", picture("JPEG", exif=exif)),
        ("WEBP", picture("WEBP")),
        ("PNG", picture("PNG")),
    ):
        # Named as something else: the bytes decide, not the name or the declared type.
        response = await client.put(
            url, files={"file": ("holiday.txt", upload, "text/plain")}, headers=owner.headers
        )
        assert response.status_code == 200, (fmt, response.text)
        assert response.json() == {"url": url, "content_type": "image/png", "width": 512, "height": 384}
    served = await client.get(url, headers=owner.headers)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "PNG" and image.size == (512, 384) and b"SecretCam" not in served.content
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert await session.get(AgentAvatar, agent["id"]) is None


async def test_bad_uploads_are_refused_clearly_and_change_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Ada"}, headers=owner.headers)).json()
    url = f"/api/v1/agents/{agent['id']}/avatar"

    async def put(data: bytes, name: str = "a.png") -> tuple[int, str]:
        response = await client.put(url, files={"file": (name, data, "image/png")}, headers=owner.headers)
        return response.status_code, response.text

    status, text = await put(b"<script>alert(1)</script>", "evil.png")
    assert status == 415 and "JPEG, PNG or WebP" in text
    status, text = await put(b"GIF89a" + b"\x00" * 100, "a.gif")
    assert status == 415
    status, text = await put(picture("PNG")[:200])  # cut short
    assert status == 422 and "cannot be read" in text
    status, text = await put(png_claiming(50_000, 50_000))
    assert status == 422 and "pixels" in text
    status, text = await put(b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024 + 10))
    assert status == 413 and "5 MB" in text
    status, _ = await put(picture("PNG"), "../../etc/passwd")  # the name plays no part
    assert status == 200
    assert (await client.put(url, json={"file": "x"}, headers=owner.headers)).status_code == 415
    other = await create_account(session, settings)
    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert (
        await client.put(url, files={"file": ("a.png", picture("PNG"))}, headers=other.headers)
    ).status_code == 404
    assert (await client.delete(url, headers=other.headers)).status_code == 404
