"""API shapes of exports and deletions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from hutch.deletion.models import DataExport, Deletion


class ExportOut(BaseModel):
    id: str
    status: str  # pending | ready | failed
    download_url: str | None = None  # while ready and not expired
    expires_at: datetime | None = None
    size_bytes: int | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, export: DataExport) -> ExportOut:
        ready = export.status.value == "ready"
        return cls(
            id=export.id,
            status=export.status.value,
            download_url=f"/api/v1/users/me/exports/{export.id}/download" if ready else None,
            expires_at=export.expires_at,
            size_bytes=export.size_bytes,
            created_at=export.created_at,
        )


class ExportList(BaseModel):
    items: list[ExportOut]


class DeletionOut(BaseModel):
    id: str
    status: str  # pending | running | done | failed
    subject: str  # org | user
    subject_id: str
    subject_label: str
    report: dict[str, Any]
    error: str | None
    attempts: int
    export_id: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, deletion: Deletion) -> DeletionOut:
        return cls(
            id=deletion.id,
            status=deletion.status.value,
            subject=deletion.subject.value,
            subject_id=deletion.subject_id,
            subject_label=deletion.subject_label,
            report=deletion.report,
            error=deletion.error,
            attempts=deletion.attempts,
            export_id=deletion.export_id,
            created_at=deletion.created_at,
            finished_at=deletion.finished_at,
        )


class DeletionPage(BaseModel):
    items: list[DeletionOut]
    total: int
