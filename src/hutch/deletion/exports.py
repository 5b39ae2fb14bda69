"""Exports of a user's or an organisation's data: a ZIP of JSON files (account, agents, documents,
conversations, ledger), built by a job, downloadable by the user who asked for it until it expires.

Secrets never go in: password and token hashes, encrypted keys and bot tokens, webhook secrets are left out
by name (``SECRET_MARKERS``), whatever table a column comes from.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from hutch.accounts.models import OrgRole, User
from hutch.conversations.attachments_repository import AttachmentRepository
from hutch.conversations.models import MessageAttachment
from hutch.core.errors import Conflict, HutchError, NotFound
from hutch.core.ids import new_id
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.deletion.models import DataExport, ExportStatus, Subject
from hutch.deletion.repository import DataRequestRepository, ExportReads
from hutch.integrations.repository import McpServerRepository, WebhookToolRepository
from hutch.settings import Settings

EXPORT_JOB = "deletion.export"
EXPORT_LIFETIME = timedelta(days=7)
SECRET_MARKERS = ("hash", "encrypted", "secret", "password", "token", "embedding", "search")
FILES = ("account.json", "agents.json", "documents.json", "conversations.json", "ledger.json")


class ExportGone(HutchError):
    """The export expired and its file was removed."""

    status_code = 410

    def __init__(self) -> None:
        super().__init__("This export has expired; ask for a new one.")


def export_path(settings: Settings, export_id: str) -> Path:
    return settings.data_dir / "exports" / f"{export_id}.zip"


def plain(row: Any, **extra: Any) -> dict[str, Any]:
    """A row's columns as JSON values, without anything secret."""
    out: dict[str, Any] = {}
    for column in inspect(row).mapper.column_attrs:
        name = column.key
        if any(marker in name for marker in SECRET_MARKERS):
            continue
        value = json_value(getattr(row, name))
        if value is not _SKIP:
            out[name] = value
    return out | extra


_SKIP = object()


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return _SKIP  # vectors, bytes: not data a person reads


class Exports:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings
        self.rows = DataRequestRepository(uow.session)
        self.reads = ExportReads(uow.session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> Exports:
        return cls(uow, resources.settings)

    async def request(self, user: User) -> DataExport:
        """Export the user's account and the organisations they own or administer (a job builds it)."""
        return await self.create(Subject.USER, user.id, owner_user_id=user.id)

    async def create(self, subject: Subject, subject_id: str, *, owner_user_id: str | None) -> DataExport:
        export = DataExport(
            id=new_id("exp"),
            user_id=owner_user_id,
            subject=subject,
            subject_id=subject_id,
            status=ExportStatus.PENDING,
        )
        self.uow.session.add(export)
        await self.uow.session.flush()
        self.uow.defer(EXPORT_JOB, export_id=export.id)
        return export

    async def mine(self, user_id: str, export_id: str) -> DataExport:
        export = await self.rows.export_of_user(user_id, export_id)
        if export is None:
            raise NotFound("Export")
        return export

    async def recent(self, user_id: str, limit: int = 20) -> list[DataExport]:
        """The user's exports, newest first: theirs, and those kept for them by deletions they asked for."""
        return await self.rows.exports_of_user(user_id, limit)

    async def file_of(self, user_id: str, export_id: str, now: datetime | None = None) -> Path:
        """The ZIP of one of the user's exports: 404 for another's, 409 while pending, 410 once expired."""
        export = await self.mine(user_id, export_id)
        if export.status is not ExportStatus.READY:
            raise Conflict(f"This export is {export.status.value}; it can be downloaded once ready.")
        path = export_path(self.settings, export.id)
        if (
            export.expires_at is not None and export.expires_at <= (now or datetime.now(UTC))
        ) or not path.exists():
            raise ExportGone()
        return path

    async def build(self, export_id: str) -> str:
        """Write the export's ZIP (again, if it was half written) and mark it ready; idempotent."""
        export = await self.rows.export(export_id, lock=True)
        if export is None:
            return "gone"
        if export.status is ExportStatus.READY and export_path(self.settings, export.id).exists():
            return "ready"
        try:
            files = await self.contents(export.subject, export.subject_id)
        except NotFound as exc:
            export.status, export.error = ExportStatus.FAILED, exc.detail
            return "failed"
        path = export_path(self.settings, export.id)
        write_zip(path, files)
        now = datetime.now(UTC)
        export.status, export.completed_at, export.error = ExportStatus.READY, now, None
        export.size_bytes, export.expires_at = path.stat().st_size, now + EXPORT_LIFETIME
        return "ready"

    async def contents(self, subject: Subject, subject_id: str) -> dict[str, Any]:
        """Each file of the export: its JSON value."""
        if subject is Subject.USER:
            user = await self.reads.user(subject_id)
            if user is None:
                raise NotFound("User")
            memberships = await self.reads.memberships_of(user.id)
            account: dict[str, Any] = {
                "user": plain(user),
                "memberships": [plain(m, org_name=o.name) for o, m in memberships],
            }
            # A member's data is their account; an org's data goes to those who run it.
            org_ids = [o.id for o, m in memberships if m.role in (OrgRole.OWNER, OrgRole.ADMIN)]
        else:
            org = await self.reads.org(subject_id)
            if org is None:
                raise NotFound("Organisation")
            members = await self.reads.members_of(org.id)
            account = {"org": plain(org), "members": [plain(u, role=m.role.value) for u, m in members]}
            org_ids = [org.id]
        files: dict[str, Any] = {"account.json": account}
        agents: list[dict[str, Any]] = []
        channels: list[dict[str, Any]] = []
        documents: list[dict[str, Any]] = []
        conversations: list[dict[str, Any]] = []
        memories: list[dict[str, Any]] = []
        ledger: list[dict[str, Any]] = []
        balances: list[dict[str, Any]] = []
        tools: list[dict[str, Any]] = []
        for org_id in org_ids:
            agents += rows(await self.reads.agents(org_id))
            channels += rows(await self.reads.channels(org_id))
            documents += [plain(d, text=text) for d, text in await self.reads.documents(org_id)]
            by_conversation: dict[str, list[dict[str, Any]]] = {}
            sent_files: dict[str, list[dict[str, Any]]] = {}
            for attachment in await AttachmentRepository(self.uow.session).metadata_of_org(org_id):
                sent_files.setdefault(attachment.message_id, []).append(attachment_metadata(attachment))
            for message in await self.reads.messages(org_id):
                by_conversation.setdefault(message.conversation_id, []).append(
                    plain(message, attachments=sent_files.get(message.id, []))
                )
            conversations += [
                plain(c, messages=by_conversation.get(c.id, []))
                for c in await self.reads.conversations(org_id)
            ]
            memories += rows(await self.reads.memories(org_id))
            ledger += rows(await self.reads.ledger(org_id))
            balances += rows(await self.reads.balances(org_id))
            # Connected tools without their header values or signing secrets (encrypted columns).
            tools += rows(await McpServerRepository(self.uow.session).of_org(org_id))
            tools += rows(await WebhookToolRepository(self.uow.session).of_org(org_id))
        files["agents.json"] = {"agents": agents, "channels": channels, "connected_tools": tools}
        files["documents.json"] = {"documents": documents}
        files["conversations.json"] = {"conversations": conversations, "memories": memories}
        files["ledger.json"] = {"balances": balances, "entries": ledger}
        return files

    async def forget_expired(self, now: datetime | None = None) -> int:
        """Remove the files of expired exports (the rows stay, to answer 410)."""
        removed = 0
        for export in await self.rows.expired_exports(now or datetime.now(UTC)):
            path = export_path(self.settings, export.id)
            if path.exists():
                path.unlink()
                removed += 1
        return removed


def attachment_metadata(attachment: MessageAttachment) -> dict[str, Any]:
    """A file sent with a message, as the export describes it (its bytes stay in Hutch)."""
    return {
        "id": attachment.id,
        "kind": attachment.kind.value,
        "content_type": attachment.content_type,
        "filename": attachment.filename,
        "size_bytes": attachment.size_bytes,
        "text": attachment.text,
        "duration_seconds": json_value(attachment.duration_seconds),
        "transcribed": attachment.transcribed,
        "created_at": json_value(attachment.created_at),
    }


def rows(found: Iterable[Any]) -> list[dict[str, Any]]:
    return [plain(row) for row in found]


def write_zip(path: Path, files: dict[str, Any]) -> None:
    """Written beside and renamed, so a download never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, json.dumps(content, indent=2, ensure_ascii=False, sort_keys=True))
    partial.replace(path)
