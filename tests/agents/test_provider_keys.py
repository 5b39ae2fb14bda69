"""Provider keys an organisation brings (BYOK): stored encrypted, shown only by their last four characters,
managed by owners and admins, refused for private endpoints, and used instead of the platform's key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.agents.models import ProviderKey
from hutch.app import create_app
from hutch.audit.models import AuditEntry
from hutch.conversations.models import Message, MessageRole
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer

DEEPSEEK_KEY = "sk-deepseek-very-secret-a1b2"
URL = "/api/v1/provider-keys"


@pytest.fixture
async def strict_client(
    settings: Settings, database: Database, database_url: str
) -> AsyncIterator[AsyncClient]:
    """A deployment that refuses provider endpoints on private or loopback addresses (the default)."""
    strict = settings.model_copy(update={"provider_urls_allow_private": False})
    async with asgi_client(
        create_app(resources=build_test_resources(strict, database, database_url))
    ) as client:
        yield client


async def add_key(client: AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        URL, json={"provider": "deepseek", "api_key": DEEPSEEK_KEY, **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_keys(session: AsyncSession, org_id: str) -> list[ProviderKey]:
    stmt = select(ProviderKey).where(ProviderKey.org_id == org_id).execution_options(populate_existing=True)
    return list((await session.scalars(stmt)).all())


async def test_a_key_is_stored_encrypted_and_only_its_last_four_characters_show(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    response = await client.post(
        URL, json={"provider": "deepseek", "api_key": f"  {DEEPSEEK_KEY} "}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "provider", "last4", "base_url", "created_at"}
    assert (created["provider"], created["last4"], created["base_url"]) == ("deepseek", "a1b2", None)
    assert DEEPSEEK_KEY not in response.text

    listing = await client.get(URL, headers=owner.headers)
    assert listing.status_code == 200
    assert listing.json()["items"] == [created]
    assert DEEPSEEK_KEY not in listing.text

    [row] = await stored_keys(session, owner.org.id)
    assert DEEPSEEK_KEY not in row.api_key_encrypted
    assert resources.secret_box.decrypt(row.api_key_encrypted) == DEEPSEEK_KEY  # stripped of blanks
    audit = await session.scalar(
        select(AuditEntry).where(AuditEntry.org_id == owner.org.id, AuditEntry.action == "provider_key_added")
    )
    assert audit is not None and audit.target == "deepseek" and audit.actor_user_id == owner.user.id
    assert DEEPSEEK_KEY not in str(audit.details)


async def test_adding_again_for_the_same_provider_replaces_the_key(
    client: AsyncClient, session: AsyncSession, settings: Settings, resources: Resources
) -> None:
    owner = await create_account(session, settings)
    await add_key(client, owner)
    replacement = await add_key(client, owner, api_key="sk-deepseek-rotated-z9y8")
    openai = await add_key(client, owner, provider="openai", api_key="sk-openai-own-0000")
    listed = (await client.get(URL, headers=owner.headers)).json()["items"]
    assert [(k["provider"], k["last4"]) for k in listed] == [("deepseek", "z9y8"), ("openai", "0000")]
    assert [k["id"] for k in listed] == [replacement["id"], openai["id"]]
    rows = {r.provider: r for r in await stored_keys(session, owner.org.id)}
    assert set(rows) == {"deepseek", "openai"}
    assert resources.secret_box.decrypt(rows["deepseek"].api_key_encrypted) == "sk-deepseek-rotated-z9y8"


async def test_a_key_is_removed_once_and_only_by_its_org(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    stranger = await create_account(session, settings)
    key = await add_key(client, owner)
    assert (await client.get(URL, headers=stranger.headers)).json() == {"items": []}
    assert (await client.delete(f"{URL}/{key['id']}", headers=stranger.headers)).status_code == 404
    assert len(await stored_keys(session, owner.org.id)) == 1

    removed = await client.delete(f"{URL}/{key['id']}", headers=owner.headers)
    assert removed.status_code == 204 and removed.content == b""
    assert (await client.get(URL, headers=owner.headers)).json() == {"items": []}
    assert await stored_keys(session, owner.org.id) == []
    assert (await client.delete(f"{URL}/{key['id']}", headers=owner.headers)).status_code == 404
    audit = await session.scalar(
        select(AuditEntry).where(
            AuditEntry.org_id == owner.org.id, AuditEntry.action == "provider_key_removed"
        )
    )
    assert audit is not None and audit.target == "deepseek" and audit.actor_user_id == owner.user.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "acme", "api_key": DEEPSEEK_KEY}, "provider"),
        ({"provider": "demo", "api_key": DEEPSEEK_KEY}, "provider"),
        ({"provider": "openai_compatible", "api_key": DEEPSEEK_KEY}, "base_url"),
        ({"provider": "openai", "api_key": DEEPSEEK_KEY, "base_url": "ftp://llm.example"}, "base_url"),
        ({"provider": "openai", "api_key": ""}, "api_key"),
        ({"provider": "openai", "api_key": "   "}, "api_key"),
        ({"provider": "openai"}, "api_key"),
    ],
)
async def test_invalid_keys_are_422_and_nothing_is_stored(
    client: AsyncClient, session: AsyncSession, settings: Settings, body: dict[str, str], field: str
) -> None:
    owner = await create_account(session, settings)
    response = await client.post(URL, json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert DEEPSEEK_KEY not in response.text
    assert await stored_keys(session, owner.org.id) == []


async def test_unknown_provider_names_the_ones_there_are(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    response = await client.post(URL, json={"provider": "acme", "api_key": "k-1234"}, headers=owner.headers)
    [error] = response.json()["detail"]
    assert "acme" in error["msg"]
    for provider in ("anthropic", "openai", "google", "moonshot", "deepseek", "openai_compatible"):
        assert provider in error["msg"]
    assert "demo" not in error["msg"]


async def test_an_openai_compatible_endpoint_is_stored_with_its_base_url(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    key = await add_key(client, owner, provider="openai_compatible", base_url="https://llm.acme.example/v1")
    assert key["base_url"] == "https://llm.acme.example/v1"
    [row] = await stored_keys(session, owner.org.id)
    assert row.base_url == "https://llm.acme.example/v1"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:11434/v1",
        "http://localhost:8000/v1",
        "http://10.0.0.5/v1",
        "http://192.168.1.20/v1",
        "http://169.254.169.254/latest",
        "http://[::1]:8000/v1",
    ],
)
async def test_private_and_loopback_endpoints_are_refused(
    strict_client: AsyncClient, session: AsyncSession, settings: Settings, base_url: str
) -> None:
    owner = await create_account(session, settings)
    response = await strict_client.post(
        URL,
        json={"provider": "openai_compatible", "api_key": DEEPSEEK_KEY, "base_url": base_url},
        headers=owner.headers,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "base_url"] and "private or local" in error["msg"]
    assert DEEPSEEK_KEY not in response.text
    assert await stored_keys(session, owner.org.id) == []


async def test_a_public_endpoint_is_accepted_when_private_ones_are_refused(
    strict_client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    response = await strict_client.post(
        URL,
        json={"provider": "openai_compatible", "api_key": DEEPSEEK_KEY, "base_url": "https://1.1.1.1/v1"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    assert len(await stored_keys(session, owner.org.id)) == 1


async def test_only_owners_and_admins_manage_provider_keys(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    admin = await create_account(session, settings, org=owner.org, role=OrgRole.ADMIN)
    member = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)
    key = await add_key(client, admin)
    api_key = await client.post("/api/v1/api-keys", json={"label": "ci"}, headers=owner.headers)
    as_key = {"X-API-Key": api_key.json()["key"]}

    for headers in (member.headers, as_key):
        assert (
            await client.post(URL, json={"provider": "openai", "api_key": "sk-x-1234"}, headers=headers)
        ).status_code == 403
        assert (await client.get(URL, headers=headers)).status_code == 403
        assert (await client.delete(f"{URL}/{key['id']}", headers=headers)).status_code == 403
    assert [r.provider for r in await stored_keys(session, owner.org.id)] == ["deepseek"]
    assert (await client.get(URL, headers=owner.headers)).json()["items"] == [key]
    assert (await client.get(URL)).status_code == 401


async def test_chat_uses_the_orgs_own_key_instead_of_the_platforms(
    client: AsyncClient, session: AsyncSession, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/agents", json={"name": "Byok", "model": "openai/gpt-4o"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    chat_url = f"/api/v1/agents/{created.json()['id']}/chat"

    async def chat() -> tuple[str, Message]:
        response = await client.post(chat_url, json={"message": "hi"}, headers=owner.headers)
        assert response.status_code == 200, response.text
        assert response.json()["message"]["status"] == "ok"
        [call] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
        fake_llm.reset()
        message = await session.get(Message, response.json()["message"]["id"], populate_existing=True)
        assert message is not None and message.role is MessageRole.ASSISTANT
        return call.headers["authorization"], message

    authorization, platform_answer = await chat()
    assert authorization == "Bearer sk-test-platform-key" and platform_answer.byok is False

    own_key = "sk-org-own-openai-key-7777"
    await add_key(client, owner, provider="openai", api_key=own_key, base_url=fake_llm.api_base)
    authorization, own_answer = await chat()
    assert authorization == f"Bearer {own_key}" and own_answer.byok is True
    assert own_answer.model == "openai/gpt-4o"

    [key] = (await client.get(URL, headers=owner.headers)).json()["items"]
    assert (await client.delete(f"{URL}/{key['id']}", headers=owner.headers)).status_code == 204
    authorization, _ = await chat()
    assert authorization == "Bearer sk-test-platform-key"


async def test_the_openai_compatible_api_uses_the_orgs_own_key_too(
    client: AsyncClient, session: AsyncSession, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    """The API reads the agent, its org and the org's keys in one query: each key must still count."""
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/agents", json={"name": "Byok", "model": "openai/gpt-4o"}, headers=owner.headers
    )
    api_key = await client.post(
        "/api/v1/api-keys", json={"label": "sdk", "scopes": ["chat"]}, headers=owner.headers
    )
    as_key = {"Authorization": f"Bearer {api_key.json()['key']}"}

    async def authorization() -> str:
        body = {"model": created.json()["slug"], "messages": [{"role": "user", "content": "hi"}], "user": "u"}
        response = await client.post("/v1/chat/completions", json=body, headers=as_key)
        assert response.status_code == 200, response.text
        [call] = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
        fake_llm.reset()
        return call.headers["authorization"]

    assert await authorization() == "Bearer sk-test-platform-key"
    own_key = "sk-org-own-openai-key-8888"
    await add_key(client, owner, provider="openai", api_key=own_key, base_url=fake_llm.api_base)
    await add_key(client, owner, provider="deepseek", api_key="sk-deepseek-key-9999")
    assert await authorization() == f"Bearer {own_key}"
    for key in (await client.get(URL, headers=owner.headers)).json()["items"]:
        assert (await client.delete(f"{URL}/{key['id']}", headers=owner.headers)).status_code == 204
    assert await authorization() == "Bearer sk-test-platform-key"
