"""What a dedicated runtime is told about its agent: written by the platform, read once at start."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from hutch.agents.models import Agent, AgentStatus, Audience, Placement
from hutch.engine.catalog import Credentials


class AgentSpec(BaseModel):
    id: str
    org_id: str
    slug: str
    name: str
    role: str
    system_prompt: str
    model: str
    fallback_model: str | None = None
    temperature: Decimal = Field(ge=0, le=2)
    max_tokens: int = Field(ge=1)
    tools: list[str] = []
    audience: Audience = Audience.PUBLIC


class ProviderKey(BaseModel):
    api_key: SecretStr | None = None
    base_url: str | None = None


class RuntimeConfig(BaseModel):
    agent: AgentSpec
    org_name: str
    provider_keys: dict[str, ProviderKey] = {}  # the org's own keys; the platform's come from settings
    gateway_token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # the platform's bearer token, hashed
    # The platform's HUTCH_EGRESS_ALLOW: private hosts or networks the agent's browser may reach.
    egress_allow: list[str] = []

    def agent_row(self) -> Agent:
        """The agent as the engine knows it (a detached row: the runtime has no database)."""
        a = self.agent
        return Agent(
            id=a.id,
            org_id=a.org_id,
            slug=a.slug,
            name=a.name,
            role=a.role,
            system_prompt=a.system_prompt,
            model=a.model,
            fallback_model=a.fallback_model,
            temperature=a.temperature,
            max_tokens=a.max_tokens,
            audience=a.audience,
            placement=Placement.DEDICATED,
            tools=list(a.tools),
            status=AgentStatus.ACTIVE,
        )

    def credentials(self) -> dict[str, Credentials]:
        return {
            provider: Credentials(key.api_key.get_secret_value() if key.api_key else None, key.base_url)
            for provider, key in self.provider_keys.items()
        }


def config_json(config: RuntimeConfig) -> str:
    """The config as the runtime reads it, keys included (SecretStr would otherwise hide them)."""
    data = config.model_dump(mode="json")
    data["provider_keys"] = {
        provider: {
            "api_key": key.api_key.get_secret_value() if key.api_key else None,
            "base_url": key.base_url,
        }
        for provider, key in config.provider_keys.items()
    }
    return json.dumps(data)


def write_config(path: Path, config: RuntimeConfig) -> None:
    """Written readable by its owner only: it holds provider keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(config_json(config))


def read_config(path: Path) -> RuntimeConfig:
    return RuntimeConfig.model_validate_json(path.read_text())
