"""The OpenAI embeddings provider reads vectors as the API sends them: base64 float32 when asked (as
OpenAI answers), or a JSON list from servers that ignore the ask."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from hutch.knowledge.embeddings import OpenAIEmbeddings, _vector, _vectors
from hutch.knowledge.models import EMBEDDING_DIMENSIONS
from hutch.settings import Settings
from tests.fakes.llm import FakeLLMServer, deterministic_embedding, embedding_as_base64

TEXTS = ["the kettle warranty", "descaling with vinegar", "a third, longer text about returns and refunds"]


def close(read: list[float], sent: list[float]) -> bool:
    """Equal as float32 numbers are (base64 carries four bytes a number)."""
    return all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(read, sent, strict=True))


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    server.start()
    yield server
    server.stop()


async def test_vectors_come_back_in_order_asked_as_base64(llm: FakeLLMServer) -> None:
    embeddings = OpenAIEmbeddings(
        Settings(openai_api_key="sk-test", openai_base_url=f"{llm.base_url}/v1"), "text-embedding-3-small"
    )
    try:
        vectors = await embeddings.embed(TEXTS)
    finally:
        await embeddings.close()
    assert llm.state.requests[-1].body["encoding_format"] == "base64"
    assert len(vectors) == len(TEXTS)
    for text, vector in zip(TEXTS, vectors, strict=True):
        expected = deterministic_embedding(text, EMBEDDING_DIMENSIONS)
        assert len(vector) == EMBEDDING_DIMENSIONS
        assert close(vector, expected)


def test_a_vector_reads_the_same_as_base64_and_as_a_list() -> None:
    vector = deterministic_embedding("the same words either way", EMBEDDING_DIMENSIONS)
    as_list = _vector(list(vector))
    as_base64 = _vector(embedding_as_base64(vector))
    assert as_list == vector
    assert close(as_base64, vector)


@pytest.mark.parametrize("body", [{}, [], {"data": None}, {"data": [{"index": 0}]}, {"error": "nope"}])
def test_an_answer_without_vectors_is_a_clear_error(body: object) -> None:
    with pytest.raises(ValueError, match="without a list of vectors"):
        _vectors(body)


def test_vectors_follow_their_index_or_else_their_place() -> None:
    first, second = [1.0, 0.0], [0.0, 1.0]
    assert _vectors({"data": [{"index": 1, "embedding": second}, {"index": 0, "embedding": first}]}) == [
        first,
        second,
    ]
    assert _vectors({"data": [{"embedding": first}, {"embedding": second}]}) == [first, second]
