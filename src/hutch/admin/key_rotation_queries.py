"""Reading and rewriting the encrypted columns a key rotation walks through, a batch at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


class KeyRotationQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def batch(
        self,
        id_column: InstrumentedAttribute[str],
        secret_column: InstrumentedAttribute[str],
        after: str,
        limit: int,
    ) -> list[Any]:
        """(id, ciphertext) of the next ``limit`` rows after ``after`` that hold a secret, locked; rows
        another transaction holds are skipped."""
        return list(
            (
                await self.session.execute(
                    select(id_column, secret_column)
                    .where(id_column > after, secret_column.is_not(None))
                    .order_by(id_column)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )

    async def store(
        self,
        id_column: InstrumentedAttribute[str],
        secret_column: InstrumentedAttribute[str],
        row_id: str,
        ciphertext: str,
    ) -> None:
        await self.session.execute(
            update(secret_column.class_).where(id_column == row_id).values({secret_column.key: ciphertext})
        )
