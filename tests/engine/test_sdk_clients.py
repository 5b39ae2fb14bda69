"""Every model SDK client Hutch builds (chat models, embeddings, transcription) sends over the SDK's aiohttp
transport: its default httpx client costs several times the CPU per request, on every turn."""

from __future__ import annotations

import ast
from pathlib import Path

from openai import DefaultAioHttpClient

from hutch.knowledge.embeddings import OpenAIEmbeddings
from hutch.settings import Settings

SRC = Path(__file__).resolve().parents[2] / "src" / "hutch"
SDK_CLIENTS = {"AsyncOpenAI", "AsyncAnthropic", "AsBuiltOpenAI"}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def test_every_sdk_client_is_built_on_the_aiohttp_transport() -> None:
    built, offenders = [], []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _name(node) in SDK_CLIENTS:
                where = f"{path.relative_to(SRC)}:{node.lineno}"
                built.append(where)
                if "http_client" not in {keyword.arg for keyword in node.keywords}:
                    offenders.append(where)
    assert len(built) >= 4  # the chat models' (OpenAI, Anthropic), the embeddings', the transcription's
    assert offenders == []


async def test_the_embeddings_client_sends_over_aiohttp() -> None:
    embeddings = OpenAIEmbeddings(Settings(openai_api_key="sk-test"), "text-embedding-3-small")
    client = embeddings._client(None)
    try:
        assert isinstance(client._client, DefaultAioHttpClient)
    finally:
        await embeddings.close()
