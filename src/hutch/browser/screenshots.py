"""Where screenshots are kept: files under the data directory, or an S3-compatible bucket.

:func:`build_screenshot_store` picks one from settings at start-up (``HUTCH_SCREENSHOTS_BUCKET`` names a
bucket; ``HUTCH_SCREENSHOTS_S3_ENDPOINT_URL`` points at MinIO, R2 or another S3-compatible service).
Keys are ``<org id>/<screenshot id>.jpg``, made by Hutch, never by a caller. A key of any other shape names
nothing a store holds: reading it finds nothing (the image answers 404) and deleting it deletes nothing.
Deleting is idempotent (what is gone already is not an error): an org's deletion removes its whole prefix,
an agent's the keys of its rows.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hutch.settings import Settings

# Each part short enough to be a file name anywhere (255 bytes): a longer one names nothing Hutch made.
SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}/[A-Za-z0-9_-]{1,200}\.(jpg|png)")
SAFE_ORG = re.compile(r"[A-Za-z0-9_-]{1,100}")
DELETE_BATCH = 1000  # keys per S3 DeleteObjects call (its limit)


class ScreenshotStoreFailed(Exception):
    """The store could not keep or give back an image."""


class ScreenshotStore(Protocol):
    """Keeps screenshot images by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these images (those already gone are skipped)."""
        ...

    async def delete_org(self, org_id: str) -> int:
        """Remove every image of the org (its key prefix); how many were there."""
        ...


def _org_prefix(org_id: str) -> str:
    if not SAFE_ORG.fullmatch(org_id):
        raise ValueError(f"not an org id: {org_id!r}")
    return f"{org_id}/"


def is_screenshot_key(key: str) -> bool:
    """Whether ``key`` has the shape of the keys Hutch makes (no other can name a stored image)."""
    return SAFE_KEY.fullmatch(key) is not None  # match() would let a trailing newline through


def screenshot_key(org_id: str, screenshot_id: str) -> str:
    key = f"{org_id}/{screenshot_id}.jpg"
    if not is_screenshot_key(key):
        raise ValueError(f"not a screenshot key: {key!r}")
    return key


class FileScreenshots:
    """Files under ``<data dir>/screenshots``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not is_screenshot_key(key):
            raise ValueError(f"not a screenshot key: {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)

    async def get(self, key: str) -> bytes | None:
        if not is_screenshot_key(key):
            return None
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [self._path(key) for key in keys if is_screenshot_key(key)]
        await asyncio.to_thread(self._unlink, paths)

    @staticmethod
    def _unlink(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    async def delete_org(self, org_id: str) -> int:
        folder = self.root / _org_prefix(org_id)
        return await asyncio.to_thread(self._remove_folder, folder)

    @staticmethod
    def _remove_folder(folder: Path) -> int:
        if not folder.is_dir():
            return 0
        try:
            count = sum(1 for p in folder.iterdir() if p.suffix in (".jpg", ".png"))
            shutil.rmtree(folder)
        except FileNotFoundError:  # removed meanwhile (a deletion run twice at once)
            return 0
        return count


class BucketScreenshots:
    """Objects in an S3-compatible bucket, through boto3 (its calls run in a thread)."""

    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self.client = client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(
                self.client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise ScreenshotStoreFailed(
                f"the screenshot could not be stored in {self.bucket}: {exc}"
            ) from None

    async def get(self, key: str) -> bytes | None:
        if not is_screenshot_key(key):
            return None  # S3 would refuse an empty key or take ".." as part of a name: neither is ours
        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ScreenshotStoreFailed(f"the screenshot could not be read from {self.bucket}") from None
        body: bytes = await asyncio.to_thread(answer["Body"].read)
        return body

    async def delete(self, keys: Sequence[str]) -> None:
        await self._delete_keys([key for key in keys if is_screenshot_key(key)])

    async def delete_org(self, org_id: str) -> int:
        prefix = _org_prefix(org_id)
        try:
            keys = await asyncio.to_thread(self._keys_under, prefix)
        except (BotoCoreError, ClientError) as exc:
            raise ScreenshotStoreFailed(
                f"the screenshots in {self.bucket} could not be listed: {exc}"
            ) from None
        return await self._delete_keys(keys)

    def _keys_under(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    async def _delete_keys(self, keys: list[str]) -> int:
        """S3 deletes a missing key without complaint, so a retried deletion just deletes nothing again;
        how many keys were given."""
        removed = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = await asyncio.to_thread(
                    self.client.delete_objects,
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                raise ScreenshotStoreFailed(
                    f"the screenshots could not be deleted from {self.bucket}: {exc}"
                ) from None
            errors = answer.get("Errors") or []
            if errors:
                raise ScreenshotStoreFailed(
                    f"{len(errors)} screenshot(s) could not be deleted from {self.bucket}: "
                    f"{errors[0].get('Code', 'error')}"
                )
            removed += len(batch)
        return removed


def build_screenshot_store(settings: Settings) -> ScreenshotStore:
    if settings.screenshots_bucket is None:
        return FileScreenshots(settings.resolved_data_dir / "screenshots")
    key_id = settings.screenshots_s3_access_key_id
    secret = settings.screenshots_s3_secret_access_key
    client = boto3.client(
        "s3",
        endpoint_url=settings.screenshots_s3_endpoint_url,
        region_name=settings.screenshots_s3_region,
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=15),
    )
    return BucketScreenshots(settings.screenshots_bucket, client)
