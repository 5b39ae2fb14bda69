"""Agents as a client sees them: create, list, read, change and delete; defaults from role templates;
validation; slugs; who may do what with a user token or an API key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.agents.models import Agent
from hutch.audit.models import AuditEntry
from hutch.conversations.models import Conversation, Message
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import Account, create_account

ASSISTANT_TOOLS = ["remember", "forget", "current_time"]
GENERIC_PERSONA_START = "You are a helpful assistant."


async def create_agent(client: AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/agents", json={"name": "Helper Bot", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_api_key(client: AsyncClient, owner: Account, **fields: Any) -> dict[str, str]:
    response = await client.post("/api/v1/api-keys", json={"label": "ci", **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


async def agents_in_org(session: AsyncSession, org_id: str) -> int:
    return int(await session.scalar(select(func.count()).where(Agent.org_id == org_id)) or 0)


async def templates(client: AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/agent-roles", headers=account.headers)
    assert response.status_code == 200
    return {t["key"]: t for t in response.json()["items"]}


async def test_a_name_is_enough_the_assistant_template_fills_in_the_rest(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = await create_agent(client, owner, name="  Helper Bot ")
    assistant = (await templates(client, owner))["assistant"]
    assert agent["id"].startswith("agt_")
    assert {k: v for k, v in agent.items() if k not in ("id", "created_at", "updated_at")} == {
        "slug": "helper-bot",
        "name": "Helper Bot",
        "role": "assistant",
        "system_prompt": assistant["persona"],
        "model": "anthropic/claude-sonnet-4-5",
        "fallback_model": None,
        "temperature": 0.7,
        "max_tokens": 1024,
        "audience": "public",
        "placement": "shared",
        "tools": ASSISTANT_TOOLS,
        "status": "active",
        "end_user_messages_per_minute": None,  # the plan's
        "end_user_messages_per_day": None,
    }
    assert assistant["tools"] == ASSISTANT_TOOLS
    stored = await session.get(Agent, agent["id"])
    assert stored is not None and stored.org_id == owner.org.id
    assert (stored.name, stored.model, stored.tools) == (
        "Helper Bot",
        "anthropic/claude-sonnet-4-5",
        ASSISTANT_TOOLS,
    )
    audit = await session.scalar(
        select(AuditEntry).where(AuditEntry.action == "agent_created", AuditEntry.target == agent["id"])
    )
    assert audit is not None and audit.actor_user_id == owner.user.id and audit.org_id == owner.org.id


async def test_every_field_given_is_kept_and_read_back(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    fields = {
        "name": "Concierge",
        "slug": "front-desk",
        "role": "support",
        "system_prompt": "You greet hotel guests.",
        "model": "openai/gpt-4o-mini",
        "fallback_model": "anthropic/claude-haiku-4-5",
        "temperature": 1.25,
        "max_tokens": 4096,
        "audience": "personal",
        "placement": "dedicated",
        "tools": ["web_fetch", "remember"],
        "status": "paused",
    }
    agent = await create_agent(client, owner, **fields)
    assert {k: agent[k] for k in fields} == fields
    read = await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    assert read.status_code == 200 and read.json() == agent
    stored = await session.get(Agent, agent["id"])
    assert stored is not None
    assert (stored.placement.value, stored.audience.value, stored.status.value) == (
        "dedicated",
        "personal",
        "paused",
    )
    assert float(stored.temperature) == 1.25 and stored.tools == ["web_fetch", "remember"]


async def test_boundary_values_are_accepted(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    longest = await create_agent(client, owner, name="n" * 100, system_prompt="p" * 20_000, temperature=2)
    assert len(longest["name"]) == 100 and len(longest["system_prompt"]) == 20_000
    assert longest["temperature"] == 2.0
    coldest = await create_agent(client, owner, temperature=0, max_tokens=1, system_prompt="")
    assert (coldest["temperature"], coldest["max_tokens"], coldest["system_prompt"]) == (0.0, 1, "")


async def test_list_pages_with_skip_and_limit_and_shows_only_the_orgs_agents(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    stranger = await create_account(session, settings)
    ids = {(await create_agent(client, owner, name=f"Agent {n}"))["id"] for n in range(5)}
    foreign = await create_agent(client, stranger, name="Agent 0")

    pages = []
    for skip in (0, 2, 4):
        response = await client.get(f"/api/v1/agents?skip={skip}&limit=2", headers=owner.headers)
        assert response.status_code == 200
        assert response.json()["total"] == 5
        pages.append([a["id"] for a in response.json()["items"]])
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {i for p in pages for i in p} == ids
    everything = (await client.get("/api/v1/agents", headers=owner.headers)).json()
    assert everything["total"] == 5 and {a["id"] for a in everything["items"]} == ids
    assert foreign["id"] not in str(everything)
    beyond = (await client.get("/api/v1/agents?skip=10", headers=owner.headers)).json()
    assert beyond == {"items": [], "total": 5}
    for query in ("limit=0", "limit=201", "skip=-1"):
        assert (await client.get(f"/api/v1/agents?{query}", headers=owner.headers)).status_code == 422


async def test_patch_changes_only_what_is_given(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = await create_agent(client, owner, fallback_model="openai/gpt-4o-mini")
    url = f"/api/v1/agents/{agent['id']}"

    warmer = await client.patch(url, json={"temperature": 0.2}, headers=owner.headers)
    assert warmer.status_code == 200, warmer.text
    unchanged = {k: v for k, v in agent.items() if k not in ("temperature", "updated_at")}
    assert {k: v for k, v in warmer.json().items() if k not in ("temperature", "updated_at")} == unchanged
    assert warmer.json()["temperature"] == 0.2

    renamed = await client.patch(
        url,
        json={
            "name": " Renamed ",
            "model": "openai/gpt-4o",
            "tools": ["current_time"],
            "fallback_model": None,
        },
        headers=owner.headers,
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["model"]) == ("Renamed", "openai/gpt-4o")
    assert renamed.json()["tools"] == ["current_time"]
    assert renamed.json()["fallback_model"] is None
    assert renamed.json()["slug"] == "helper-bot"  # a new name keeps the slug links use

    read = (await client.get(url, headers=owner.headers)).json()
    assert read == renamed.json()
    stored = await session.get(Agent, agent["id"])
    assert stored is not None
    await session.refresh(stored)
    assert (stored.name, stored.model, stored.fallback_model) == ("Renamed", "openai/gpt-4o", None)

    cleared = await client.patch(url, json={"tools": []}, headers=owner.headers)
    assert cleared.status_code == 200 and cleared.json()["tools"] == []


async def test_null_for_a_required_field_leaves_it_unchanged(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = await create_agent(client, owner, placement="dedicated", audience="personal")
    nulls = {
        field: None
        for field in (
            "name",
            "slug",
            "role",
            "system_prompt",
            "model",
            "temperature",
            "max_tokens",
            "audience",
            "placement",
            "status",
        )
    }
    response = await client.patch(f"/api/v1/agents/{agent['id']}", json=nulls, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in agent.items() if k != "updated_at"
    }


async def test_slug_can_be_changed_but_not_to_one_in_use(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    first = await create_agent(client, owner, name="First")
    second = await create_agent(client, owner, name="Second")
    moved = await client.patch(
        f"/api/v1/agents/{first['id']}", json={"slug": "front-desk"}, headers=owner.headers
    )
    assert moved.status_code == 200 and moved.json()["slug"] == "front-desk"
    same = await client.patch(
        f"/api/v1/agents/{first['id']}", json={"slug": "front-desk"}, headers=owner.headers
    )
    assert same.status_code == 200

    taken = await client.patch(
        f"/api/v1/agents/{second['id']}", json={"slug": "front-desk"}, headers=owner.headers
    )
    assert taken.status_code == 409
    assert "front-desk" in taken.json()["detail"]
    assert (await client.get(f"/api/v1/agents/{second['id']}", headers=owner.headers)).json()[
        "slug"
    ] == "second"
    bad = await client.patch(
        f"/api/v1/agents/{second['id']}", json={"slug": "Front Desk"}, headers=owner.headers
    )
    assert bad.status_code == 422


async def test_patch_validates_like_create(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = await create_agent(client, owner)
    url = f"/api/v1/agents/{agent['id']}"
    for body, field in (
        ({"model": "openai/gpt-99"}, "model"),
        ({"fallback_model": "nowhere/model"}, "fallback_model"),
        ({"tools": ["teleport"]}, "tools"),
        ({"name": "  "}, "name"),
        ({"temperature": 3}, "temperature"),
        ({"placement": "cloud"}, "placement"),
    ):
        response = await client.patch(url, json=body, headers=owner.headers)
        assert response.status_code == 422, body
        assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert (await client.get(url, headers=owner.headers)).json() == agent


async def test_delete_removes_the_agent_and_its_conversations(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = await create_agent(client, owner, model="demo/echo")
    chat = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert chat.status_code == 200, chat.text
    conversation_id = chat.json()["conversation_id"]
    assert await session.get(Conversation, conversation_id) is not None

    deleted = await client.delete(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).status_code == 404
    assert (await client.get("/api/v1/agents", headers=owner.headers)).json() == {"items": [], "total": 0}
    assert await session.scalar(select(Conversation.id).where(Conversation.id == conversation_id)) is None
    assert await session.scalar(select(Message.id).where(Message.conversation_id == conversation_id)) is None
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "agent_deleted"))
    assert audit is not None and audit.target == agent["id"] and audit.details == {"name": "Helper Bot"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "Bot", "system_prompt": "p" * 20_001}, "system_prompt"),
        ({"name": "Bot", "temperature": -0.1}, "temperature"),
        ({"name": "Bot", "temperature": 2.01}, "temperature"),
        ({"name": "Bot", "max_tokens": 0}, "max_tokens"),
        ({"name": "Bot", "audience": "everyone"}, "audience"),
        ({"name": "Bot", "placement": "cloud"}, "placement"),
        ({"name": "Bot", "status": "deleted"}, "status"),
        ({"name": "Bot", "slug": "Not A Slug"}, "slug"),
        ({"name": "Bot", "tools": "remember"}, "tools"),
    ],
)
async def test_invalid_fields_are_422_and_store_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings, body: dict[str, Any], field: str
) -> None:
    owner = await create_account(session, settings)
    response = await client.post("/api/v1/agents", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert await agents_in_org(session, owner.org.id) == 0


async def test_unknown_model_is_422_in_the_list_form_naming_the_field(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    response = await client.post(
        "/api/v1/agents", json={"name": "Bot", "model": "openai/gpt-99"}, headers=owner.headers
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "model"] and error["type"] == "value_error"
    assert "openai/gpt-99" in error["msg"] and "/api/v1/models" in error["msg"]
    fallback = await client.post(
        "/api/v1/agents", json={"name": "Bot", "fallback_model": "openai/gpt-99"}, headers=owner.headers
    )
    assert fallback.status_code == 422
    assert fallback.json()["detail"][0]["loc"] == ["body", "fallback_model"]
    assert await agents_in_org(session, owner.org.id) == 0


async def test_unknown_tool_is_422_listing_the_tools_there_are(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    response = await client.post(
        "/api/v1/agents", json={"name": "Bot", "tools": ["remember", "teleport"]}, headers=owner.headers
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "tools"]
    assert "teleport" in error["msg"]
    tools = (await client.get("/api/v1/agent-tools", headers=owner.headers)).json()["items"]
    available = error["msg"].split("available: ", 1)[1]
    assert available.split(", ") == [t["name"] for t in tools]
    assert await agents_in_org(session, owner.org.id) == 0


async def test_slugs_come_from_the_name_and_are_unique_per_org(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    other = await create_account(session, settings)
    slugs = [(await create_agent(client, owner, name="Helper Bot"))["slug"] for _ in range(3)]
    assert slugs == ["helper-bot", "helper-bot-2", "helper-bot-3"]
    assert (await create_agent(client, other, name="Helper Bot"))["slug"] == "helper-bot"
    assert (await create_agent(client, owner, name="Café & Co. — Support!"))["slug"] == "caf-co-support"
    assert (await create_agent(client, owner, name="???"))["slug"] == "agent"
    long = await create_agent(client, owner, name="word " * 20)
    assert len(long["slug"]) <= 48 and not long["slug"].endswith("-")

    taken = await client.post(
        "/api/v1/agents", json={"name": "X", "slug": "helper-bot"}, headers=owner.headers
    )
    assert taken.status_code == 409 and "helper-bot" in taken.json()["detail"]
    explicit = await create_agent(client, owner, name="Y", slug="front-desk")
    assert explicit["slug"] == "front-desk"
    after_explicit = await create_agent(client, owner, name="Front Desk")
    assert after_explicit["slug"] == "front-desk-2"
    # The same explicit slug is free in another org.
    assert (await create_agent(client, other, name="Z", slug="front-desk"))["slug"] == "front-desk"
    assert await agents_in_org(session, owner.org.id) == 8


async def test_twenty_creates_at_once_get_twenty_distinct_slugs(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    responses: list[Response] = await asyncio.gather(
        *(
            live.client.post("/api/v1/agents", json={"name": "Helper Bot"}, headers=owner.headers)
            for _ in range(20)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20, [
        r.text for r in responses if r.status_code != 201
    ]
    slugs = {r.json()["slug"] for r in responses}
    assert slugs == {"helper-bot", *(f"helper-bot-{n}" for n in range(2, 21))}
    stored = await live.session.scalars(select(Agent.slug).where(Agent.org_id == owner.org.id))
    assert set(stored.all()) == slugs


async def test_roles_give_personas_and_tools_that_can_be_overridden(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    roles = await templates(client, owner)
    custom = await create_agent(client, owner, role="custom")
    assert custom["role"] == "custom"
    assert custom["system_prompt"].startswith(GENERIC_PERSONA_START)
    assert custom["tools"] == []
    unknown_role = await create_agent(client, owner, role="pirate")
    assert unknown_role["system_prompt"] == custom["system_prompt"]

    researcher = await create_agent(client, owner, role="researcher")
    assert researcher["system_prompt"] == roles["researcher"]["persona"]
    assert researcher["tools"] == roles["researcher"]["tools"]
    assert "web_fetch" in researcher["tools"]
    no_tools = await create_agent(client, owner, role="researcher", tools=[])
    assert no_tools["tools"] == [] and no_tools["system_prompt"] == roles["researcher"]["persona"]
    chosen = await create_agent(
        client, owner, role="support", tools=["current_time", "current_time", "forget"]
    )
    assert chosen["tools"] == ["current_time", "forget"]
    own_prompt = await create_agent(client, owner, role="sales", system_prompt="Sell umbrellas.")
    assert own_prompt["system_prompt"] == "Sell umbrellas."
    assert own_prompt["tools"] == roles["sales"]["tools"]


async def test_role_templates_and_tools_are_listed(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    roles = await templates(client, owner)
    assert {"assistant", "support", "sales", "researcher", "executive_assistant"} <= set(roles)
    for role in roles.values():
        assert role["title"] and role["description"] and role["persona"]
    tools_response = await client.get("/api/v1/agent-tools", headers=owner.headers)
    assert tools_response.status_code == 200
    tools = {t["name"]: t["description"] for t in tools_response.json()["items"]}
    assert {"remember", "forget", "current_time", "check_balance", "get_status", "web_fetch"} <= set(tools)
    assert all(tools.values())
    # Every tool a template names is one that can be enabled.
    assert {t for role in roles.values() for t in role["tools"]} <= set(tools)
    assert (await client.get("/api/v1/agent-roles")).status_code == 401
    assert (await client.get("/api/v1/agent-tools")).status_code == 401


async def test_api_keys_need_the_write_scope_to_create(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    writer = await create_api_key(client, owner, scopes=["write"])
    reader = await create_api_key(client, owner, scopes=["read"])
    created = await client.post("/api/v1/agents", json={"name": "From CI"}, headers=writer)
    assert created.status_code == 201, created.text
    audit = await session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "agent_created", AuditEntry.target == created.json()["id"]
        )
    )
    assert audit is not None and audit.actor_api_key_id is not None and audit.actor_user_id is None

    refused = await client.post("/api/v1/agents", json={"name": "Nope"}, headers=reader)
    assert refused.status_code == 403
    agent_url = f"/api/v1/agents/{created.json()['id']}"
    assert (await client.patch(agent_url, json={"name": "Nope"}, headers=reader)).status_code == 403
    assert (await client.delete(agent_url, headers=reader)).status_code == 403
    listed = await client.get("/api/v1/agents", headers=reader)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert (await client.get(agent_url, headers=reader)).json()["name"] == "From CI"
    assert await agents_in_org(session, owner.org.id) == 1
    assert (await client.post("/api/v1/agents", json={"name": "Anon"})).status_code == 401


async def test_a_key_limited_to_some_agents_sees_only_those_and_cannot_create(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    allowed = await create_agent(client, owner, name="Allowed")
    hidden = await create_agent(client, owner, name="Hidden")
    limited = await create_api_key(client, owner, agent_ids=[allowed["id"]])

    listed = await client.get("/api/v1/agents", headers=limited)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [allowed["id"]] and listed.json()["total"] == 1
    assert (await client.get(f"/api/v1/agents/{allowed['id']}", headers=limited)).status_code == 200
    hidden_url = f"/api/v1/agents/{hidden['id']}"
    for response in (
        await client.get(hidden_url, headers=limited),
        await client.patch(hidden_url, json={"name": "Mine now"}, headers=limited),
        await client.delete(hidden_url, headers=limited),
    ):
        assert response.status_code == 404
        assert "Hidden" not in response.text
    patched = await client.patch(f"/api/v1/agents/{allowed['id']}", json={"max_tokens": 99}, headers=limited)
    assert patched.status_code == 200 and patched.json()["max_tokens"] == 99

    refused = await client.post("/api/v1/agents", json={"name": "New"}, headers=limited)
    assert refused.status_code == 403
    assert await agents_in_org(session, owner.org.id) == 2
    assert (await client.get(hidden_url, headers=owner.headers)).json()["name"] == "Hidden"


async def test_another_orgs_agent_is_not_found(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_account(session, settings, org_name="Alice Co")
    bob = await create_account(session, settings, org_name="Bob Co")
    secret = await create_agent(client, alice, name="Secret Project", system_prompt="Codename Bluebird.")
    url = f"/api/v1/agents/{secret['id']}"
    for response in (
        await client.get(url, headers=bob.headers),
        await client.patch(url, json={"name": "Stolen"}, headers=bob.headers),
        await client.delete(url, headers=bob.headers),
        await client.post(f"{url}/chat", json={"message": "hi"}, headers=bob.headers),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "Agent not found."}
    assert (await client.get("/api/v1/agents", headers=bob.headers)).json() == {"items": [], "total": 0}
    assert (await client.get(url, headers=alice.headers)).json() == secret
    # The slug is per org: Bob may use Alice's.
    assert (await create_agent(client, bob, name="Secret Project"))["slug"] == secret["slug"]


async def test_nul_characters_are_refused_as_bad_input(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Ada"}, headers=owner.headers)).json()
    memories = await client.get(
        f"/api/v1/agents/{agent['id']}/memories?end_user=a%00b", headers=owner.headers
    )
    assert memories.status_code == 400 and "NUL" in memories.json()["detail"]
    renamed = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"system_prompt": "a\u0000b"}, headers=owner.headers
    )
    assert renamed.status_code == 400
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).json()[
        "system_prompt"
    ] != "a\u0000b"
