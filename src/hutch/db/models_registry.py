"""Imports every domain's tables so Alembic and the tests see the whole schema."""

from __future__ import annotations

from hutch.db.base import Base

metadata = Base.metadata
