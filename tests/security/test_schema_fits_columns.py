"""A value the API accepts fits the column it is stored in.

Walks the request bodies of the app's OpenAPI schema and the SQLAlchemy tables, pairs each string field
with the column it is written to (by domain names: `AgentCreate.name` → `agents.name`, plus the few fields
stored under another name, listed in STORED_AS), and fails when the schema allows a longer string than the
column holds, or sets no maximum at all above a bounded column. Such a field answers 500 (PostgreSQL's
"value too long") to whoever sends the longest value the documentation allows.

What it cannot pair is listed in docs/security.md: fields whose value is rewritten before it is stored
(an API caller's `user` becomes `api:<user>`, which tests/test_api_fuzz.py's boundary phase covers), and
fields stored inside JSON (no length limit).
"""

from __future__ import annotations

import re._constants as sre_constants  # type: ignore[import-not-found]  # no stubs; what re itself parses with
import re._parser as sre_parse  # type: ignore[import-not-found]
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import String
from sqlalchemy.orm import Mapper

import hutch.db.models_registry  # noqa: F401 - every table registered
from hutch.app import create_app
from hutch.db.base import Base
from hutch.settings import Settings
from tests.conftest import TEST_SECRET_KEY

# Request schema → the table its fields are stored in, where the names differ.
TABLE_OF = {
    "SignupRequest": "User",
    "LoginRequest": "User",
    "PasswordResetRequest": "User",
    "ProfileUpdate": "User",
    "InvitationAccept": "User",
    "HumanReply": "Message",
    "WidgetCreate": "Channel",
    "WidgetOrigins": "Channel",
    "TelegramConnect": "Channel",
    "AutoBotCreate": "ManagedBotRequest",
    "ChannelLinkRequest": "ChannelLink",
    "GrantRequest": "LedgerEntry",
    "DocumentText": "Document",
}
# (schema, field) → (table, column) for fields stored under another name or in another table.
STORED_AS = {
    ("SignupRequest", "org_name"): ("Org", "name"),
    ("InvitationCreate", "email"): ("Invitation", "email"),
    ("HumanReply", "content"): ("Message", "content"),
    ("SuspendRequest", "reason"): ("Org", "suspension_reason"),
    ("ChatRequest", "message"): ("Message", "content"),
    ("VisitorMessage", "text"): ("Message", "content"),
    ("GrantRequest", "reason"): ("LedgerEntry", "description"),
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(
        secret_key=SecretStr(TEST_SECRET_KEY),
        database_url=SecretStr("postgresql+asyncpg://nobody@127.0.0.1:1/none"),  # never connected to
        data_dir=Path(tmp_path_factory.mktemp("schema")),
    )
    return create_app(settings).openapi()


def request_schemas(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every request body's schema by name (inline ones by their title)."""
    components = spec["components"]["schemas"]
    found: dict[str, dict[str, Any]] = {}
    for operations in spec["paths"].values():
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content.get("schema", {})
                for option in [schema, *schema.get("anyOf", [])]:
                    if "$ref" in option:
                        name = option["$ref"].rsplit("/", 1)[-1]
                        found[name] = components[name]
                    elif "properties" in option:
                        found[option.get("title", "inline")] = option
    return found


EMAIL_MAX = 254  # what an address may be (RFC 5321); Pydantic's email validation refuses longer ones


def pattern_width(pattern: str) -> float:
    """The longest string an anchored pattern matches (infinity when it repeats without a bound)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return float("inf")
    widest = sre_parse.parse(pattern).getwidth()[1]
    return float("inf") if widest >= sre_constants.MAXREPEAT else float(widest)


def longest(field: dict[str, Any]) -> float:
    """The longest string the field accepts (infinity without a maximum); 0 when it takes no string."""
    lengths = []
    for option in field.get("anyOf", [field]):
        if option.get("type") != "string" or option.get("format") == "binary" or "enum" in option:
            continue
        bounds = [float(option.get("maxLength", "inf"))]
        if option.get("format") == "email":
            bounds.append(EMAIL_MAX)
        if "pattern" in option:
            bounds.append(pattern_width(option["pattern"]))
        lengths.append(min(bounds))
    return max(lengths, default=0)


def tables() -> dict[str, Mapper[Any]]:
    return {mapper.class_.__name__: mapper for mapper in Base.registry.mappers}


def column_length(mapper: Mapper[Any], name: str) -> int | bool | None:
    """The column's length; None when unbounded (text); False when there is no such string column."""
    column = mapper.columns.get(name)
    if column is None or not isinstance(column.type, String):
        return False
    return column.type.length


def table_for(schema: str, known: dict[str, Mapper[Any]]) -> str | None:
    if schema in TABLE_OF:
        return TABLE_OF[schema]
    for suffix in ("Create", "Update", "Request", "In"):
        if schema.endswith(suffix) and schema.removesuffix(suffix) in known:
            return schema.removesuffix(suffix)
    return schema if schema in known else None


def test_every_string_the_api_accepts_fits_its_column(openapi: dict[str, Any]) -> None:
    known = tables()
    too_long: list[str] = []
    paired = 0
    for schema_name, schema in request_schemas(openapi).items():
        table = table_for(schema_name, known)
        for field_name, field in schema.get("properties", {}).items():
            accepts = longest(field)
            if not accepts:
                continue
            target = STORED_AS.get((schema_name, field_name)) or (table, field_name) if table else None
            if target is None or target[0] is None:
                continue
            length = column_length(known[target[0]], target[1])
            if length is False:
                continue
            paired += 1
            if length is not None and accepts > length:
                too_long.append(
                    f"{schema_name}.{field_name} accepts {accepts} characters; "
                    f"{target[0]}.{target[1]} holds {length}"
                )
    assert paired >= 40, f"only {paired} fields paired with a column: has the mapping gone stale?"
    assert not too_long, "\n".join(sorted(too_long))


def test_the_pairing_would_catch_a_field_longer_than_its_column() -> None:
    known = tables()
    assert isinstance(column_length(known["Agent"], "name"), int)
    assert column_length(known["Agent"], "nothing") is False
    assert longest({"type": "string", "maxLength": 101}) == 101
    assert longest({"type": "string", "pattern": "^(docker|ec2)$"}) == 6
    assert longest({"type": "string", "pattern": "^[a-z]+$"}) == float("inf")
    assert longest({"anyOf": [{"type": "string"}, {"type": "null"}]}) == float("inf")
    assert table_for("AgentUpdate", known) == "Agent" and table_for("SignupRequest", known) == "User"


def integers(
    schema: dict[str, Any], components: dict[str, Any], where: str, seen: frozenset[str]
) -> list[str]:
    """The integers under ``schema`` that declare no maximum, by where they are."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return (
            [] if name in seen else integers(components[name], components, f"{where}>{name}", seen | {name})
        )
    found = [
        unbounded
        for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", [])
        for unbounded in integers(option, components, where, seen)
    ]
    if schema.get("type") == "integer" and "maximum" not in schema and "exclusiveMaximum" not in schema:
        found.append(where)
    for name, field in schema.get("properties", {}).items():
        found += integers(field, components, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        found += integers(schema["items"], components, f"{where}[]", seen)
    return found


def test_every_integer_from_outside_is_bounded_before_it_reaches_sql(openapi: dict[str, Any]) -> None:
    """A path, query, header or body integer without a maximum lets 2**64 through to a query, where
    PostgreSQL's integer types overflow (a 500 instead of a 422)."""
    components = openapi["components"]["schemas"]
    unbounded: list[str] = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{label} {parameter['in']}:{parameter['name']}"
                unbounded += integers(parameter["schema"], components, where, frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += integers(content.get("schema", {}), components, f"{label} body", frozenset())
    assert not unbounded, "\n".join(sorted(set(unbounded)))
