"""API shapes of MCP servers and webhook tools. Header values and signing secrets are never answered back
(a webhook tool's secret once, when it is created)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from hutch.integrations.models import McpServerStatus, McpTransport

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}$")
# Hop-by-hop and framing headers are Hutch's to set.
RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "connection", "transfer-encoding"})

Name = Annotated[str, Field(min_length=1, max_length=100)]
Url = Annotated[str, Field(min_length=1, max_length=2000)]
ToolName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
Description = Annotated[str, Field(min_length=1, max_length=4000)]


def _check_schema(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("type", "object") != "object":
        raise ValueError('the arguments must be described by an object schema ({"type": "object", ...})')
    if not isinstance(value.get("properties", {}), dict):
        raise ValueError("properties must be an object")
    if len(str(value)) > 50_000:
        raise ValueError("the schema is too large (50,000 characters at most)")
    return {"type": "object", "properties": {}, **value}


class McpServerCreate(BaseModel):
    name: Name
    url: Url
    # Sent with every request to the server (an API key, ``Authorization: Bearer ...``); stored encrypted.
    headers: dict[str, str] | None = Field(default=None, max_length=20)
    bearer_token: SecretStr | None = Field(default=None, max_length=4000)  # = Authorization: Bearer <token>
    # Default: SSE when the URL's path ends in /sse, else streamable HTTP.
    transport: McpTransport | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header in (value or {}).items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"the {name} header is set by the platform")
            if any(c in header for c in "\r\n\0") or len(header) > 8000:
                raise ValueError(f"the value of {name} is not a valid header value")
        return value


class McpToolOut(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any] = Field(default_factory=dict)


class McpServerOut(BaseModel):
    id: str
    name: str
    url: str
    transport: McpTransport
    status: McpServerStatus
    error: str | None  # why the last listing failed
    header_names: list[str]  # the values are never shown
    tools: list[McpToolOut]
    tools_listed_at: datetime | None
    created_at: datetime


class McpServerList(BaseModel):
    items: list[McpServerOut]
    total: int


class WebhookToolCreate(BaseModel):
    name: ToolName
    description: Description
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    url: Url

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_schema(value)


class WebhookToolUpdate(BaseModel):
    """Fields left out stay as they are; the signing secret never changes (delete and create to rotate)."""

    name: ToolName | None = None
    description: Description | None = None
    parameters: dict[str, Any] | None = None
    url: Url | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_schema(value) if value is not None else None


class WebhookToolOut(BaseModel):
    id: str
    name: str
    description: str
    parameters: dict[str, Any]
    url: str
    created_at: datetime
    updated_at: datetime


class WebhookToolCreated(WebhookToolOut):
    signing_secret: str  # shown in this answer only: verify X-Hutch-Signature with it


class WebhookToolList(BaseModel):
    items: list[WebhookToolOut]
    total: int
