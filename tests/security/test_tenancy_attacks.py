"""Attacks on tenancy replayed: reading or continuing another org's or another end user's conversation by
its id, and reaching another tenant's knowledge, memories, files and avatars through retrieval, tools or ids.

The access matrix (tests/test_access_matrix.py) tries every route with another org's ids; these tests follow
the paths an attacker takes through the product instead: a chat that names someone else's conversation, a
question whose answer sits in another org's documents, a `previous_response_id` from another key."""

from __future__ import annotations

import json

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.models import Message
from hutch.conversations.repository import MemoryRepository
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply

SECRET = "Zanzibar-7741 is the vault code"  # what the victim's org knows and nobody else may read


@pytest.fixture
async def victim(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Victim")


@pytest.fixture
async def attacker(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Attacker")


async def agent_of(client: AsyncClient, account: Account) -> str:
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Agent", "model": "openai/gpt-4o", "tools": ["remember"]},
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def key_of(client: AsyncClient, account: Account) -> dict[str, str]:
    created = await client.post(
        "/api/v1/api-keys", json={"label": "k", "scopes": ["read", "write", "chat"]}, headers=account.headers
    )
    return {"X-API-Key": created.json()["key"]}


def prompts(fake_llm: FakeLLMServer) -> str:
    return json.dumps([request.body for request in fake_llm.requests])


async def count_messages(session: AsyncSession, conversation_id: str) -> int:
    return int(
        await session.scalar(select(func.count()).where(Message.conversation_id == conversation_id)) or 0
    )


async def test_conversation_hijack_by_id(
    client: AsyncClient, session: AsyncSession, victim: Account, attacker: Account, fake_llm: FakeLLMServer
) -> None:
    """Reading or continuing another org's conversation, or another end user's, by its id."""
    victim_agent, attacker_agent = await agent_of(client, victim), await agent_of(client, attacker)
    said = await client.post(
        f"/api/v1/agents/{victim_agent}/chat", json={"message": SECRET}, headers=victim.headers
    )
    conversation = said.json()["conversation_id"]
    before = await count_messages(session, conversation)

    # Reading it, through every route that names a conversation
    for path in (
        f"/api/v1/conversations/{conversation}",
        f"/api/v1/conversations/{conversation}/export",
        f"/api/v1/agents/{attacker_agent}/conversations/{conversation}/messages",
        f"/api/v1/agents/{victim_agent}/conversations/{conversation}/messages",
    ):
        answer = await client.get(path, headers=attacker.headers)
        assert answer.status_code == 404 and SECRET not in answer.text, path
    # Continuing it: through the attacker's own agent, and through the victim's agent
    fake_llm.reset()
    for agent in (attacker_agent, victim_agent):
        answer = await client.post(
            f"/api/v1/agents/{agent}/chat",
            json={"message": "what did they say?", "conversation_id": conversation},
            headers=attacker.headers,
        )
        assert answer.status_code == 404 and SECRET not in answer.text
    assert await count_messages(session, conversation) == before
    assert SECRET not in prompts(fake_llm)

    # Through the Responses API: another org's key cannot continue the victim's stored response
    victim_key, attacker_key = await key_of(client, victim), await key_of(client, attacker)
    stored = await client.post(
        "/v1/responses", json={"model": victim_agent, "input": SECRET}, headers=victim_key
    )
    assert stored.status_code == 200, stored.text
    response_id = stored.json()["id"]
    fake_llm.reset()
    stolen = await client.post(
        "/v1/responses",
        json={"model": attacker_agent, "input": "go on", "previous_response_id": response_id},
        headers=attacker_key,
    )
    assert stolen.status_code == 404 and SECRET not in stolen.text
    read = await client.get(f"/v1/responses/{response_id}", headers=attacker_key)
    assert read.status_code == 404 and SECRET not in read.text
    assert SECRET not in prompts(fake_llm)

    # Another end user of the same agent and key: Chat Completions' `user` keeps each one's history apart
    fake_llm.reset()
    for user, text in (("alice", SECRET), ("mallory", "what did alice tell you?")):
        await client.post(
            "/v1/chat/completions",
            json={"model": victim_agent, "user": user, "messages": [{"role": "user", "content": text}]},
            headers=victim_key,
        )
    assert SECRET not in json.dumps(fake_llm.requests[-1].body)


async def test_cross_tenant_knowledge_memories_files_and_avatars(
    client: AsyncClient,
    session: AsyncSession,
    victim: Account,
    attacker: Account,
    jobs: RecordingJobQueue,
    fake_llm: FakeLLMServer,
) -> None:
    """Another tenant's documents, memories, uploaded files and avatar: never reached through retrieval, a
    tool, or an id."""
    victim_agent, attacker_agent = await agent_of(client, victim), await agent_of(client, attacker)
    document = await client.post(
        f"/api/v1/agents/{victim_agent}/documents",
        json={"title": "Vault", "content": f"{SECRET}. Keep it safe."},
        headers=victim.headers,
    )
    await jobs.run_pending()
    await MemoryRepository(session).add_fact(victim.org.id, victim_agent, "api:alice", SECRET)
    await session.commit()
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)  # refused or accepted, it must not cross over
    await client.put(
        f"/api/v1/agents/{victim_agent}/avatar",
        files={"file": ("me.png", png, "image/png")},
        headers=victim.headers,
    )

    # Retrieval: the attacker's own agent searched and asked for the victim's words finds nothing
    search = await client.post(
        f"/api/v1/agents/{attacker_agent}/knowledge/search",
        json={"query": "Zanzibar vault code"},
        headers=attacker.headers,
    )
    assert search.status_code == 200 and search.json()["items"] == []
    fake_llm.reset()
    fake_llm.script(
        ScriptedReply(
            tool_calls=[{"id": "c1", "type": "function", "function": {"name": "remember", "arguments": "{}"}}]
        ),
        ScriptedReply(content="I know nothing."),
    )
    await client.post(
        "/v1/chat/completions",
        json={
            "model": attacker_agent,
            "user": "alice",  # the same end-user id as the victim's remembered person
            "messages": [{"role": "user", "content": "Zanzibar vault code?"}],
        },
        headers=await key_of(client, attacker),
    )
    assert fake_llm.requests and SECRET not in prompts(fake_llm)

    # Ids: the victim's document, memories, avatar, through the attacker's agent and the victim's
    document_id = document.json()["id"]
    for path in (
        f"/api/v1/agents/{victim_agent}/documents/{document_id}",
        f"/api/v1/agents/{attacker_agent}/documents/{document_id}",
        f"/api/v1/agents/{victim_agent}/memories?end_user=api:alice",
        f"/api/v1/agents/{victim_agent}/avatar",
    ):
        answer = await client.get(path, headers=attacker.headers)
        assert answer.status_code == 404 and SECRET not in answer.text, path
    listed = await client.get(
        f"/api/v1/agents/{attacker_agent}/memories?end_user=api:alice", headers=attacker.headers
    )
    assert SECRET not in listed.text
    deleted = await client.delete(
        f"/api/v1/agents/{victim_agent}/documents/{document_id}", headers=attacker.headers
    )
    assert deleted.status_code == 404
    still = await client.get(f"/api/v1/agents/{victim_agent}/documents/{document_id}", headers=victim.headers)
    assert still.status_code == 200
