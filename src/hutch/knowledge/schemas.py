"""Request and response bodies of the knowledge API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from hutch.knowledge.models import DocumentStatus


class DocumentText(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    content: str = Field(min_length=1)
    format: str = Field(default="text", pattern="^(text|md|html)$")  # how to read `content`


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    kind: str
    status: DocumentStatus
    error: str | None
    chunk_count: int
    chunks_total: int
    chunks_done: int
    size_bytes: int
    created_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentOut]


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=50)


class SearchHit(BaseModel):
    document_id: str
    chunk_id: str
    title: str
    heading: str
    text: str
    score: float


class SearchResults(BaseModel):
    items: list[SearchHit]
