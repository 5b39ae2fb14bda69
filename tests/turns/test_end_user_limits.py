"""Per-person limits (fair use): an agent's or its plan's messages a minute and a day for one end user who
is not a member, on the OpenAI-compatible API; the agent fields that set them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.settings import Settings
from tests.channels.test_openai_api import make_agent, make_key
from tests.factories import Account, create_account


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    account = await create_account(session, settings, org_name="Acme")
    await session.execute(update(Org).where(Org.id == account.org.id).values(plan="fairuse"))  # 3 a minute
    await session.commit()
    return account


@pytest.fixture
async def sdk(app: FastAPI, client: httpx.AsyncClient, owner: Account) -> AsyncIterator[openai.AsyncOpenAI]:
    key = await make_key(client, owner, scopes=["chat"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield openai.AsyncOpenAI(
            api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0
        )


async def ask(client: httpx.AsyncClient, key: str, agent: str, user: str | None) -> httpx.Response:
    body: dict[str, object] = {"model": agent, "messages": [{"role": "user", "content": "hi"}]}
    if user is not None:
        body["user"] = user
    return await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_the_plans_limit_refuses_one_api_user_while_others_and_the_key_itself_go_on(
    client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner, model="demo/echo")
    key = await make_key(client, owner, scopes=["chat"])
    for _ in range(3):
        assert (await ask(client, key, agent["slug"], "eager")).status_code == 200
    refused = await ask(client, key, agent["slug"], "eager")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "3 messages per minute" in refused.json()["error"]["message"]
    assert (await ask(client, key, agent["slug"], "calm")).status_code == 200
    for _ in range(4):  # the key's own calls, without `user`, are the member's: no per-person limit
        assert (await ask(client, key, agent["slug"], None)).status_code == 200


async def test_one_persons_refused_flood_spends_none_of_the_orgs_minute(
    client: httpx.AsyncClient, owner: Account
) -> None:
    # The plan answers 10 messages a minute for the whole org, 3 for one person.
    agent = await make_agent(client, owner, model="demo/echo")
    key = await make_key(client, owner, scopes=["chat"])
    flood = [(await ask(client, key, agent["slug"], "flood")).status_code for _ in range(15)]
    assert flood == [200] * 3 + [429] * 12
    others = [
        (await ask(client, key, agent["slug"], user)).status_code for user in ["a", "b", "c"] + [None] * 4
    ]
    assert others == [200] * 7  # 3 + 7: the org's 10
    refused = await ask(client, key, agent["slug"], "d")
    assert refused.status_code == 429 and "10 messages per minute" in refused.json()["error"]["message"]


async def test_the_agents_setting_overrides_the_plans(client: httpx.AsyncClient, owner: Account) -> None:
    agent = await make_agent(client, owner, model="demo/echo", end_user_messages_per_minute=1)
    assert agent["end_user_messages_per_minute"] == 1
    key = await make_key(client, owner, scopes=["chat"])
    assert (await ask(client, key, agent["slug"], "eager")).status_code == 200
    assert (await ask(client, key, agent["slug"], "eager")).status_code == 429
    back = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"end_user_messages_per_minute": None}, headers=owner.headers
    )
    assert back.status_code == 200 and back.json()["end_user_messages_per_minute"] is None
    assert (await ask(client, key, agent["slug"], "eager")).status_code == 200  # the plan's 3 again


async def test_sdk_user_is_limited_with_openai_errors(
    sdk: openai.AsyncOpenAI, client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner, model="demo/echo", end_user_messages_per_day=1)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    await sdk.chat.completions.create(model=agent["slug"], messages=messages, user="eager")
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(model=agent["slug"], messages=messages, user="eager")
    await sdk.chat.completions.create(model=agent["slug"], messages=messages, user="calm")


@pytest.mark.parametrize(
    "fields",
    [
        {"end_user_messages_per_minute": 0},
        {"end_user_messages_per_day": -1},
        {"end_user_messages_per_minute": 4},  # the Fair use plan allows 3
        {"end_user_messages_per_day": 101},
    ],
)
async def test_bad_values_are_422(client: httpx.AsyncClient, owner: Account, fields: dict[str, int]) -> None:
    created = await client.post("/api/v1/agents", json={"name": "Bot", **fields}, headers=owner.headers)
    assert created.status_code == 422, created.text
    agent = await make_agent(client, owner)
    changed = await client.patch(f"/api/v1/agents/{agent['id']}", json=fields, headers=owner.headers)
    assert changed.status_code == 422, changed.text
    got = (await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).json()
    assert got["end_user_messages_per_minute"] is None and got["end_user_messages_per_day"] is None


async def test_a_blocked_api_user_is_refused_on_every_path_and_costs_nothing(
    client: httpx.AsyncClient, owner: Account
) -> None:
    agent = await make_agent(client, owner, model="demo/echo")
    key = await make_key(client, owner, scopes=["chat"])
    auth = {"Authorization": f"Bearer {key}"}
    assert (await ask(client, key, agent["slug"], "bob")).status_code == 200  # stored: bob is in the inbox
    listed = (await client.get("/api/v1/conversations", headers=owner.headers)).json()["items"]
    [bob] = [item["end_user"] for item in listed if item["channel"] == "openai_api"]
    blocked = await client.post(f"/api/v1/end-users/{bob['id']}/block", headers=owner.headers)
    assert blocked.status_code == 200
    before = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]

    stored = await ask(client, key, agent["slug"], "bob")
    unstored = await client.post(
        "/v1/responses",
        json={"model": agent["slug"], "input": "hi", "store": False, "user": "bob"},
        headers=auth,
    )
    tool_result = await client.post(
        "/v1/chat/completions",
        json={
            "model": agent["slug"],
            "user": "bob",
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
        },
        headers=auth,
    )
    for refused in (stored, unstored, tool_result):
        assert refused.status_code == 403, refused.text
        assert "blocked" in refused.json()["error"]["message"]
    after = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    assert after["messages_today"] == before["messages_today"]  # nothing counted
    assert (await ask(client, key, agent["slug"], "alice")).status_code == 200  # others go on

    unblocked = await client.delete(f"/api/v1/end-users/{bob['id']}/block", headers=owner.headers)
    assert unblocked.status_code == 204
    # The blocked calls took no place in bob's minute either: two more of the plan's 3, then 429.
    assert (await ask(client, key, agent["slug"], "bob")).status_code == 200
    assert (await ask(client, key, agent["slug"], "bob")).status_code == 200
    assert (await ask(client, key, agent["slug"], "bob")).status_code == 429
