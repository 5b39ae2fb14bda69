"""What another statement carries in its round trip: data-modifying CTEs, scalar reads, their parameters.

PostgreSQL runs every data-modifying statement of a ``WITH`` clause to completion, whether or not the main
statement reads its rows, and the whole statement is atomic: counters can ride along with the insert they
count, and the pair needs no transaction around it. Scalar reads ride as extra columns of the carrier's
row, read in its snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import CTE, Label, Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import HasCTE

Carrier = TypeVar("Carrier", bound=HasCTE)
Built = TypeVar("Built")
_NOTHING_ELSE: Select[Any] = select(literal_column("1"))
# Statements are built once per shape: the compiled-statement cache then finds them without building again.
_BUILT: dict[Hashable, Any] = {}


@dataclass(frozen=True)
class Carried:
    """Data-modifying CTEs, scalar columns (one value per row of the carrier) and their parameters.

    Parameter names must differ from the column names of any insert that carries them: an insert takes
    parameters named like its columns as its values."""

    ctes: tuple[CTE, ...] = ()
    columns: tuple[Label[Any], ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def __add__(self, other: Carried) -> Carried:
        return Carried(self.ctes + other.ctes, self.columns + other.columns, {**self.params, **other.params})

    def carried_by(self, statement: Carrier) -> Carrier:
        """``statement`` with the CTEs (the columns are for carriers that build their own select)."""
        return built_once((statement, self.ctes), lambda: statement.add_cte(*self.ctes))

    def alone(self) -> Select[Any]:
        """A statement of their own: the writes, and a row of the columns (or of 1 without any)."""
        return built_once(
            ("alone", self.ctes, self.columns),
            lambda: (select(*self.columns) if self.columns else _NOTHING_ELSE).add_cte(*self.ctes),
        )

    async def execute(self, session: AsyncSession) -> dict[str, Any]:
        """Run them as a statement of their own; the columns' values."""
        return self.values((await session.execute(self.alone(), self.params)).one())

    def values(self, row: Any) -> dict[str, Any]:
        """The carried columns' values in a row of the carrier's result."""
        return {column.name: getattr(row, column.name) for column in self.columns}


NOTHING = Carried()


def built_once(shape: Hashable, build: Callable[[], Built]) -> Built:
    """The statement built for ``shape`` (hashable parts, compared by identity), built on first use."""
    found = _BUILT.get(shape)
    if found is None:
        found = _BUILT[shape] = build()
    return found
