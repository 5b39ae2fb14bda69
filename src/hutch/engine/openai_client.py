"""An OpenAI SDK client that sends chat messages and tools as pydantic-ai built them.

The SDK walks every chat request's body against its request types before sending it, looking for fields
to rename or reformat. Chat request types have none, and pydantic-ai already builds messages and tools in
the wire format, so the walk changes nothing; it costs about half a millisecond of CPU for a short
conversation with three tools and grows with every message a caller sends. Messages and tools go in
``extra_body`` instead, which the SDK merges into the JSON body after the walk: the same bytes, sent
sooner. Everything else about the call (retries, errors, streaming, response parsing) stays the SDK's.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

from openai import AsyncOpenAI, Omit
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions


class _Completions(AsyncCompletions):
    async def create(  # type: ignore[override]
        self,
        *,
        messages: Iterable[Any],
        tools: Iterable[Any] | Omit = Omit(),
        extra_body: dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        as_built: dict[str, Any] = {"messages": list(messages)}
        if not isinstance(tools, Omit):
            as_built["tools"] = list(tools)
        return await super().create(messages=[], extra_body={**as_built, **(extra_body or {})}, **params)


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class AsBuiltOpenAI(AsyncOpenAI):
    """``AsyncOpenAI`` whose chat completions send messages and tools unchanged (copies keep the class)."""

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)
