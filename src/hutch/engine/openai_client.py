"""An OpenAI SDK client that sends chat request bodies as pydantic-ai built them.

The SDK walks every chat request's body against its request types before sending it, looking for fields
to rename or reformat. Chat request types have none, and pydantic-ai already builds the body in the wire
format, so the walk changes nothing; it costs about 0.6 ms of CPU for a short conversation with three tools
and grows with every message a caller sends. The body's fields go in ``extra_body`` instead, which the SDK
merges into the JSON body after the walk: the same JSON, sent sooner. Everything else about the call
(retries, errors, streaming, response parsing) stays the SDK's.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from openai import AsyncOpenAI, NotGiven, Omit
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions

# Keyword arguments of ``create`` that shape the HTTP request rather than its JSON body.
_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


class _Completions(AsyncCompletions):
    async def create(self, *, model: str, stream: Any = Omit(), **params: Any) -> Any:
        given = {k: v for k, v in params.items() if not isinstance(v, Omit | NotGiven)}
        options = {k: v for k, v in given.items() if k in _REQUEST_OPTIONS}
        as_built = {k: v for k, v in given.items() if k not in _REQUEST_OPTIONS}
        as_built |= {k: list(as_built[k]) for k in ("messages", "tools") if k in as_built}  # any iterable
        extra_body = {**as_built, **(options.pop("extra_body", None) or {})}
        return await super().create(model=model, messages=[], stream=stream, extra_body=extra_body, **options)


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class AsBuiltOpenAI(AsyncOpenAI):
    """``AsyncOpenAI`` whose chat completions send their body as given (copies keep the class)."""

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)
