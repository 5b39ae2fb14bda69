"""The LLM gateway: turns a catalog model and credentials into a pydantic-ai model, and keeps SDK clients.

Every OpenAI-compatible provider goes through ``OpenAIChatModel`` with an ``OpenAIProvider`` on its base URL
(chat completions); Anthropic through ``AnthropicModel`` (``anthropic_model``, which also offers the
computer-use tool); the demo model is a local function. SDK clients
retry timeouts, 429 and 5xx themselves (``HUTCH_LLM_MAX_RETRIES``, exponential backoff) before the engine
turns to the agent's fallback model. They send over the SDKs' aiohttp transport, which takes a quarter less
CPU per call than their default; OpenAI-compatible chat requests skip the SDK's walk of their body
(``openai_client``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openai import AsyncOpenAI, DefaultAioHttpClient
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.profiles.openai import OpenAIModelProfile
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings

from hutch.core.errors import Conflict
from hutch.core.security import fingerprint
from hutch.engine.catalog import (
    Catalog,
    Credentials,
    ModelSpec,
    ProviderKind,
    ProviderSpec,
    platform_credentials,
    usable,
)
from hutch.engine.demo import demo_model
from hutch.engine.openai_client import AsBuiltOpenAI
from hutch.settings import Settings

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

MAX_CACHED_CLIENTS = 256


class ModelUnavailable(Conflict):
    """The agent's model cannot be called: unknown, or no key is configured for its provider."""


@dataclass(frozen=True)
class ResolvedModel:
    spec: ModelSpec
    provider: ProviderSpec
    credentials: Credentials
    byok: bool  # answered with the organisation's own key (not charged for tokens)

    @property
    def strict_tools(self) -> bool:
        return self.provider.strict_tools


class LLMGateway:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.platform = platform_credentials(settings, catalog)
        self._clients: OrderedDict[tuple[str, str, str, str], AsyncOpenAI | AsyncAnthropic] = OrderedDict()
        self._closing: dict[asyncio.Task[None], AsyncOpenAI | AsyncAnthropic] = {}  # evicted, closing soon

    def available(self, provider: str, org_keys: dict[str, Credentials]) -> bool:
        spec = self.catalog.providers.get(provider)
        if spec is None:
            return False
        return usable(spec, org_keys.get(provider)) or usable(spec, self.platform.get(provider))

    def default_model(self, org_keys: dict[str, Credentials]) -> str:
        """The catalog's default when its provider has a key, else the first model that can answer.

        The demo model is the default only when no real provider is configured.
        """
        candidates = [self.catalog.default_model, *self.catalog.models]
        for model_id in candidates:
            spec = self.catalog.models[model_id]
            kind = self.catalog.providers[spec.provider].kind
            if kind is not ProviderKind.DEMO and self.available(spec.provider, org_keys):
                return model_id
        return next(m for m in self.catalog.models.values() if m.provider == "demo").id

    def resolve(self, model_id: str, org_keys: dict[str, Credentials]) -> ResolvedModel:
        spec = self.catalog.find(model_id)
        if spec is None:
            raise ModelUnavailable(f"The model {model_id} is not in the catalog; see GET /api/v1/models.")
        provider = self.catalog.providers[spec.provider]
        own = org_keys.get(spec.provider)
        if own is not None and usable(provider, Credentials(own.api_key, own.base_url or provider.base_url)):
            return ResolvedModel(
                spec, provider, Credentials(own.api_key, own.base_url or provider.base_url), True
            )
        platform = self.platform.get(spec.provider)
        if platform is not None and usable(provider, platform):
            return ResolvedModel(spec, provider, platform, byok=False)
        raise ModelUnavailable(
            f"No API key is configured for {provider.display_name}, so {spec.display_name} cannot answer; "
            "add one with POST /api/v1/provider-keys or choose another model."
        )

    def build(self, resolved: ResolvedModel, *, temperature: float, max_tokens: int) -> Model:
        kind = resolved.provider.kind
        if kind is ProviderKind.DEMO:
            return demo_model()
        client = self._client(resolved)
        if kind is ProviderKind.ANTHROPIC:
            from anthropic import AsyncAnthropic
            from pydantic_ai.providers.anthropic import AnthropicProvider

            from hutch.engine.anthropic_model import HutchAnthropicModel

            assert isinstance(client, AsyncAnthropic)
            # Anthropic accepts temperatures up to 1.
            settings = ModelSettings(temperature=min(temperature, 1.0), max_tokens=max_tokens)
            provider = AnthropicProvider(anthropic_client=client)
            return HutchAnthropicModel(resolved.spec.name, provider=provider, settings=settings)
        assert isinstance(client, AsyncOpenAI)
        profile = OpenAIModelProfile(openai_supports_strict_tool_definition=resolved.strict_tools)
        if resolved.spec.computer_use:
            # OpenAI's computer-use models answer on the Responses API only (``openai_model``).
            from hutch.engine.openai_model import HutchOpenAIResponsesModel

            return HutchOpenAIResponsesModel(
                resolved.spec.name,
                provider=OpenAIProvider(openai_client=client),
                profile=profile,
                settings=ModelSettings(temperature=temperature, max_tokens=max_tokens),
            )
        return OpenAIChatModel(
            resolved.spec.name,
            provider=OpenAIProvider(openai_client=client),
            profile=profile,
            settings=ModelSettings(temperature=temperature, max_tokens=max_tokens),
        )

    def _client(self, resolved: ResolvedModel) -> AsyncOpenAI | AsyncAnthropic:
        creds = resolved.credentials
        key = (
            resolved.provider.kind.value,
            resolved.spec.provider,
            creds.base_url or "",
            fingerprint(creds.api_key or ""),
        )
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        timeout, retries = self.settings.llm_timeout_seconds, self.settings.llm_max_retries
        if resolved.provider.kind is ProviderKind.ANTHROPIC:
            # Imported on first use: it takes a second to load.
            from anthropic import AsyncAnthropic
            from anthropic import DefaultAioHttpClient as AnthropicAioHttpClient

            client = AsyncAnthropic(
                api_key=creds.api_key or "",
                base_url=creds.base_url,
                timeout=timeout,
                max_retries=retries,
                http_client=AnthropicAioHttpClient(timeout=timeout),
            )
        else:
            # Keyless local servers (Ollama) still need a non-empty key for the SDK.
            client = AsBuiltOpenAI(
                api_key=creds.api_key or "unused",
                base_url=creds.base_url,
                timeout=timeout,
                max_retries=retries,
                http_client=DefaultAioHttpClient(timeout=timeout),
            )
        self._clients[key] = client
        while len(self._clients) > MAX_CACHED_CLIENTS:
            _, evicted = self._clients.popitem(last=False)
            self._close_later(evicted)
        return client

    def _close_later(self, client: AsyncOpenAI | AsyncAnthropic) -> None:
        """Close an evicted client once requests still using it are over (they end within the timeout)."""

        async def close() -> None:
            await asyncio.sleep(self.settings.llm_timeout_seconds * (self.settings.llm_max_retries + 1))
            await client.close()

        task = asyncio.get_running_loop().create_task(close())
        self._closing[task] = client
        task.add_done_callback(lambda done: self._closing.pop(done, None))

    async def close(self) -> None:
        for task, evicted in list(self._closing.items()):
            task.cancel()
            await evicted.close()
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
