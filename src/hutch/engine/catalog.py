"""The model catalog: which models exist, who serves them, what they cost, and whether a key is configured.

It is read at start-up from the catalog shipped with Hutch plus the operator's own file
(``HUTCH_MODEL_CATALOG_FILE``, same format; an entry with the same id replaces Hutch's). A broken file
stops start-up with one sentence naming the problem.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hutch.settings import Settings

BUILTIN_CATALOG = Path(__file__).with_name("catalog.toml")
DEMO_MODEL = "demo/echo"


class ProviderKind(StrEnum):
    OPENAI = "openai"  # any OpenAI chat-completions API
    ANTHROPIC = "anthropic"
    DEMO = "demo"


class CatalogError(Exception):
    """The catalog file is missing or invalid; the message says where and what."""


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ProviderKind
    display_name: str
    base_url: str | None = None
    requires_key: bool = True
    # Tool definitions go out with strict JSON schemas unless the backend rejects them.
    strict_tools: bool = True
    any_model: bool = False


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_.-]+/[A-Za-z0-9_.:@-]+$")
    display_name: str
    context_window: int = Field(gt=0)
    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)
    vision: bool = False  # reads images in the user's message (docs/media.md)
    # Works from screenshots (trained for computer use): the browser's tools show it the screen after each
    # action, and it drives the browser through its provider's computer tool (an OpenAI model through the
    # Responses API; docs/browser.md).
    computer_use: bool = False

    @property
    def provider(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The model's name at its provider."""
        return self.id.split("/", 1)[1]

    def cost_micro_usd(self, input_tokens: int, output_tokens: int) -> int:
        """Millionths of a dollar for this many tokens, rounded up."""
        cost = input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        return math.ceil(cost)  # prices are per million tokens: the product is already in micro-USD


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_model: str | None = None
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    models: list[ModelSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Credentials:
    api_key: str | None
    base_url: str | None


class Catalog(BaseModel):
    default_model: str
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        for spec in self.models.values():
            if spec.provider not in self.providers:
                raise ValueError(f"model {spec.id} names an unknown provider {spec.provider!r}")
        if self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not in the catalog")
        return self

    def find(self, model_id: str) -> ModelSpec | None:
        """The model, including any model of an ``any_model`` provider (priced at zero unless listed)."""
        if model_id in self.models:
            return self.models[model_id]
        provider, _, name = model_id.partition("/")
        spec = self.providers.get(provider)
        if spec is not None and spec.any_model and name:
            try:
                return ModelSpec(
                    id=model_id,
                    display_name=f"{name} ({spec.display_name})",
                    context_window=32768,
                    input_usd_per_mtok=Decimal(0),
                    output_usd_per_mtok=Decimal(0),
                )
            except ValidationError:
                return None
        return None


def _read(path: Path) -> CatalogFile:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(
            f"The model catalog {path} does not exist; check HUTCH_MODEL_CATALOG_FILE."
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"Cannot read the model catalog {path}: {exc}.") from None
    try:
        return CatalogFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogError(f"Invalid model catalog {path}: {where}: {first['msg']}.") from None


def load_catalog(settings: Settings) -> Catalog:
    layers = [_read(BUILTIN_CATALOG)]
    if settings.model_catalog_file is not None:
        layers.append(_read(settings.model_catalog_file))
    default_model = DEMO_MODEL
    providers: dict[str, ProviderSpec] = {}
    models: dict[str, ModelSpec] = {}
    for layer in layers:
        default_model = layer.default_model or default_model
        providers.update(layer.providers)
        models.update({m.id: m for m in layer.models})
    try:
        return Catalog(default_model=default_model, providers=providers, models=models)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise CatalogError(f"Invalid model catalog: {message}.") from None


def platform_credentials(settings: Settings, catalog: Catalog) -> dict[str, Credentials]:
    """The operator's keys and endpoints per provider, from settings (then the catalog's base URLs)."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    from_settings: dict[str, Credentials] = {
        "anthropic": Credentials(secret(settings.anthropic_api_key), settings.anthropic_base_url),
        "openai": Credentials(secret(settings.openai_api_key), settings.openai_base_url),
        "google": Credentials(secret(settings.google_api_key), settings.google_base_url),
        "moonshot": Credentials(secret(settings.moonshot_api_key), settings.moonshot_base_url),
        "deepseek": Credentials(secret(settings.deepseek_api_key), settings.deepseek_base_url),
        "ollama": Credentials(None, settings.ollama_base_url),
        "openai_compatible": Credentials(
            secret(settings.openai_compatible_api_key), settings.openai_compatible_base_url
        ),
    }
    credentials = {}
    for name, spec in catalog.providers.items():
        configured = from_settings.get(name, Credentials(None, None))
        credentials[name] = Credentials(configured.api_key, configured.base_url or spec.base_url)
    return credentials


def usable(spec: ProviderSpec, credentials: Credentials | None) -> bool:
    """Whether a provider can be called with these credentials."""
    if spec.kind is ProviderKind.DEMO:
        return True
    # A key given without a base URL is for the provider's own endpoint.
    if credentials is None or not (credentials.base_url or spec.base_url):
        return False
    return credentials.api_key is not None or not spec.requires_key
