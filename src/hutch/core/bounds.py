"""Bounds on numbers and names callers send, written once and shared by every route and schema.

An integer from outside is bounded before it reaches SQL: PostgreSQL's ``integer`` stops at 2**31 - 1 and
``bigint`` at 2**63 - 1, and a larger value fails the query (a 500) instead of being refused (a 422).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query
from pydantic import Field

INT_MAX = 2**31 - 1  # PostgreSQL's integer
# Nobody pages a million rows in; anything past it is refused before it becomes an OFFSET.
MAX_SKIP = 1_000_000
MAX_PAGE = 200
# Money a caller may set as a cap or an amount: ten billion dollars, far inside a bigint.
MAX_CENTS = 10**12

Skip = Annotated[int, Query(ge=0, le=MAX_SKIP)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
# A stream's position (a message count), sent back by a reconnecting client.
EventPosition = Annotated[int | None, Header(ge=0, le=INT_MAX)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]

# The end user an API call names (OpenAI's `user`, Anthropic's `metadata.user_id`) is stored as
# "api:<id>" in a 200-character column.
API_END_USER_PREFIX = "api:"
ApiEndUser = Annotated[str, Field(max_length=200 - len(API_END_USER_PREFIX))]
