"""Plan limits: counted resources under races, message quotas and rates, metering and pay-per-use charges."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.agents.models import Agent
from hutch.billing.models import LedgerEntry, LedgerKind, UsageDaily
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply


async def on_plan(session: AsyncSession, account: Account, plan: str) -> None:
    await session.execute(update(Org).where(Org.id == account.org.id).values(plan=plan))
    await session.commit()


async def test_fifty_concurrent_creates_against_a_limit_of_two_leave_two(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    await on_plan(live.session, owner, "tiny")

    async def create(n: int) -> int:
        response = await live.client.post(
            "/api/v1/agents", json={"name": f"Racer {n}", "model": "demo/echo"}, headers=owner.headers
        )
        return response.status_code

    statuses = await asyncio.gather(*(create(n) for n in range(50)))
    assert sorted(set(statuses)) == [201, 402]
    assert statuses.count(201) == 2
    agents = (await live.session.scalars(select(Agent).where(Agent.org_id == owner.org.id))).all()
    assert len(agents) == 2


async def test_the_agent_limit_names_the_limit_and_the_plan(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    await on_plan(session, owner, "tiny")
    for n in range(2):
        created = await client.post("/api/v1/agents", json={"name": f"A{n}"}, headers=owner.headers)
        assert created.status_code == 201
    refused = await client.post("/api/v1/agents", json={"name": "Third"}, headers=owner.headers)
    assert refused.status_code == 402
    assert "Tiny plan allows 2 agents" in refused.json()["detail"]
    # Deleting one makes room again.
    first = (await client.get("/api/v1/agents", headers=owner.headers)).json()["items"][0]
    assert (await client.delete(f"/api/v1/agents/{first['id']}", headers=owner.headers)).status_code == 204
    assert (
        await client.post("/api/v1/agents", json={"name": "Again"}, headers=owner.headers)
    ).status_code == 201


async def _agent(client: AsyncClient, owner: Account, model: str = "demo/echo") -> str:
    created = await client.post(
        "/api/v1/agents", json={"name": "Quota", "model": model}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_message_rates_and_quotas(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent_id = await _agent(client, owner)
    await on_plan(session, owner, "tiny")  # 3 per minute, 4 per day, 5 per month

    async def chat() -> tuple[int, dict[str, str], str]:
        response = await client.post(
            f"/api/v1/agents/{agent_id}/chat", json={"message": "hello"}, headers=owner.headers
        )
        return response.status_code, dict(response.headers), response.text

    for _ in range(3):
        assert (await chat())[0] == 200
    status, headers, text = await chat()
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert "3 messages per minute" in text
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()
    assert usage["plan"] == "tiny"
    assert usage["usage"]["messages_this_month"] == 3 and usage["usage"]["messages_today"] == 3
    assert usage["limits"]["messages_per_month"] == 5


async def test_daily_quota_answers_429_until_midnight(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent_id = await _agent(client, owner)
    await on_plan(session, owner, "daily")
    for _ in range(2):
        ok = await client.post(
            f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert ok.status_code == 200
    refused = await client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 86_401
    assert "tomorrow" in refused.json()["detail"]
    # The refused message was not stored: the conversation has the two exchanges only.
    conversations = await client.get(f"/api/v1/agents/{agent_id}/conversations", headers=owner.headers)
    conversation_id = conversations.json()["items"][0]["id"]
    messages = await client.get(
        f"/api/v1/agents/{agent_id}/conversations/{conversation_id}/messages", headers=owner.headers
    )
    assert [m["role"] for m in messages.json()["items"]] == ["user", "assistant"] * 2


async def test_monthly_quota_is_402_and_holds_under_concurrency(
    live: LiveDeployment, settings: Settings
) -> None:
    owner = await create_account(live.session, settings)
    agent_id = await _agent(live.client, owner)
    await live.session.execute(update(Org).where(Org.id == owner.org.id).values(plan="tiny"))
    await live.session.commit()
    # The month (5) is nearly used up: 4 counted earlier this month.
    await live.session.execute(
        text(
            "INSERT INTO usage_monthly (org_id, month, messages) "
            "VALUES (:org, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 4)"
        ),
        {"org": owner.org.id},
    )
    await live.session.commit()

    async def chat() -> int:
        response = await live.client.post(
            f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
        )
        return response.status_code

    statuses = await asyncio.gather(*(chat() for _ in range(3)))  # the minute limit is 3
    assert sorted(statuses) == [200, 402, 402]
    refused = await live.client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert refused.status_code in (402, 429)


async def test_pay_per_use_charges_token_costs_but_not_byok(
    client: AsyncClient, session: AsyncSession, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    admin = await create_account(session, settings, platform_admin=True)
    owner = await create_account(session, settings)
    agent_id = await _agent(client, owner, model="openai/gpt-4o")
    await on_plan(session, owner, "metered")

    no_credits = await client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert no_credits.status_code == 402 and "credits" in no_credits.json()["detail"]

    granted = await client.post(
        f"/api/v1/admin/orgs/{owner.org.id}/grants",
        json={"credits_cents": 500, "reason": "welcome"},
        headers=admin.headers,
    )
    assert granted.status_code == 201 and granted.json()["balance_after"] == 500
    # GPT-4o: $2.50 / $10 per million tokens; 200k in + 40k out = 50 + 40 cents.
    fake_llm.script(ScriptedReply(content="Costly answer.", prompt_tokens=200_000, completion_tokens=40_000))
    answered = await client.post(
        f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert answered.status_code == 200, answered.text
    balance = (await client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance["credits_cents"] == 410
    ledger = (await client.get("/api/v1/billing/ledger", headers=owner.headers)).json()
    assert [(e["kind"], e["amount"]) for e in ledger["items"]] == [("spend", -90), ("grant", 500)]

    # With the org's own OpenAI key the answer counts as a message but costs no credits.
    added = await client.post(
        "/api/v1/provider-keys",
        json={"provider": "openai", "api_key": "sk-org-own", "base_url": fake_llm.api_base},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.text
    fake_llm.script(ScriptedReply(content="Own key.", prompt_tokens=200_000, completion_tokens=40_000))
    byok = await client.post(f"/api/v1/agents/{agent_id}/chat", json={"message": "hi"}, headers=owner.headers)
    assert byok.status_code == 200
    assert (await client.get("/api/v1/billing/balance", headers=owner.headers)).json()["credits_cents"] == 410
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    assert usage["messages_this_month"] == 2  # the refused one was rolled back with its reservation
    days = (await session.scalars(select(UsageDaily).where(UsageDaily.org_id == owner.org.id))).all()
    assert sum(d.input_tokens for d in days) == 400_000
    spends = (
        await session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.org_id == owner.org.id, LedgerEntry.kind == LedgerKind.SPEND
            )
        )
    ).all()
    assert len(spends) == 1
