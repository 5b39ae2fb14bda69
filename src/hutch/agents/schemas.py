"""API shapes of agents, role templates, the model catalog and provider keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from hutch.agents.models import AgentStatus, Audience, Placement

AgentName = Annotated[str, Field(min_length=1, max_length=100)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
SystemPrompt = Annotated[str, Field(max_length=20_000)]
ModelId = Annotated[str, Field(min_length=3, max_length=200)]
Temperature = Annotated[float, Field(ge=0, le=2)]
MaxTokens = Annotated[int, Field(ge=1, le=200_000)]
RoleName = Annotated[str, Field(min_length=1, max_length=64)]
ToolNames = Annotated[list[str], Field(max_length=50)]
# Fair use, per person who is not a member; None: the plan's default. Never above the plan's own value.
PerPersonLimit = Annotated[int, Field(ge=1, le=1_000_000)]


def _strip_name(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("name must not be blank")
    return stripped


class AgentCreate(BaseModel):
    name: AgentName
    slug: Slug | None = None
    role: RoleName = "assistant"
    system_prompt: SystemPrompt | None = None  # default: the role template's persona
    model: ModelId | None = None  # default: the deployment's default model
    fallback_model: ModelId | None = None
    temperature: Temperature = 0.7
    max_tokens: MaxTokens = 1024
    audience: Audience = Audience.PUBLIC
    placement: Placement = Placement.SHARED
    tools: ToolNames | None = None  # default: the role template's tools
    status: AgentStatus = AgentStatus.ACTIVE
    end_user_messages_per_minute: PerPersonLimit | None = None
    end_user_messages_per_day: PerPersonLimit | None = None

    _name = field_validator("name")(_strip_name)


class AgentUpdate(BaseModel):
    name: AgentName | None = None
    slug: Slug | None = None
    role: RoleName | None = None
    system_prompt: SystemPrompt | None = None
    model: ModelId | None = None
    fallback_model: ModelId | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    audience: Audience | None = None
    placement: Placement | None = None
    tools: ToolNames | None = None
    status: AgentStatus | None = None
    # null: back to the plan's default
    end_user_messages_per_minute: PerPersonLimit | None = None
    end_user_messages_per_day: PerPersonLimit | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _strip_name(value)


class AgentOut(BaseModel):
    id: str
    slug: str
    name: str
    role: str
    system_prompt: str
    model: str
    fallback_model: str | None
    temperature: float
    max_tokens: int
    audience: Audience
    placement: Placement
    tools: list[str]
    status: AgentStatus
    end_user_messages_per_minute: int | None = None  # None: the plan's default
    end_user_messages_per_day: int | None = None
    created_at: datetime
    updated_at: datetime


class AgentList(BaseModel):
    items: list[AgentOut]
    total: int


class RoleTemplateOut(BaseModel):
    key: str
    title: str
    description: str
    persona: str
    tools: list[str]


class RoleTemplateList(BaseModel):
    items: list[RoleTemplateOut]


class ToolOut(BaseModel):
    name: str
    description: str
    kind: str = "builtin"  # builtin, mcp or webhook
    source: str | None = None  # a connected tool's MCP server or webhook tool, by name


class ToolList(BaseModel):
    items: list[ToolOut]


class ModelOut(BaseModel):
    id: str
    provider: str
    display_name: str
    available: bool
    context_window: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    is_default: bool
    is_demo: bool


class ModelList(BaseModel):
    items: list[ModelOut]


class ProviderKeyCreate(BaseModel):
    provider: str = Field(min_length=1, max_length=64)
    api_key: str = Field(min_length=1, max_length=500)
    base_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")

    @field_validator("api_key")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("api_key must not be blank")
        return stripped


class ProviderKeyOut(BaseModel):
    id: str
    provider: str
    last4: str
    base_url: str | None
    created_at: datetime


class ProviderKeyList(BaseModel):
    items: list[ProviderKeyOut]
