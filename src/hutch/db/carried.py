"""Writes that another statement carries in its round trip: data-modifying CTEs with their parameters.

PostgreSQL runs every data-modifying statement of a ``WITH`` clause to completion, whether or not the main
statement reads its rows, and the whole statement is atomic: counters can ride along with the insert they
count, and the pair needs no transaction around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import CTE, Select, literal_column, select
from sqlalchemy.sql.selectable import HasCTE

Carrier = TypeVar("Carrier", bound=HasCTE)
_NOTHING_ELSE: Select[Any] = select(literal_column("1"))
# Built once per pair: the compiled-statement cache then finds them without building them again.
_BUILT: dict[tuple[HasCTE, tuple[CTE, ...]], HasCTE] = {}


@dataclass(frozen=True)
class CarriedWrites:
    """Data-modifying CTEs and their parameters.

    Parameter names must differ from the column names of any insert that carries them: an insert takes
    parameters named like its columns as its values."""

    ctes: tuple[CTE, ...]
    params: Mapping[str, Any]

    def carried_by(self, statement: Carrier) -> Carrier:
        return _with(statement, self.ctes)

    def alone(self) -> Select[Any]:
        """The writes as a statement of their own."""
        return _with(_NOTHING_ELSE, self.ctes)


def _with(statement: Carrier, ctes: tuple[CTE, ...]) -> Carrier:
    built = _BUILT.get((statement, ctes))
    if built is None:
        built = _BUILT[statement, ctes] = statement.add_cte(*ctes)
    return built  # type: ignore[return-value]
