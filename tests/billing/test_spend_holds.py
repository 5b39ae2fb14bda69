"""Budgets under fire: each call in flight holds what it may cost (``hutch.billing.holds``), so a burst never
spends past an API key's monthly budget or an org's credits by more than one call, and every hold goes
when its answer is metered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from hutch.accounts.models import Org
from hutch.apikeys.models import ApiKeySpend
from hutch.billing.holds import HOLD_TTL, SpendHolds
from hutch.billing.models import Balance, SpendHold, UsageDaily, UsageMonthly
from hutch.conversations.models import Message
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply

BURST = 40
# GPT-4o at $2.50 / $10 per million tokens: 1,000 tokens in and 1,000 out cost 1.25 cents, which a key is
# charged as 2 (whole cents, rounded up). With the agent's answers capped at 1,000 tokens, each call holds
# 2 cents too. The upstream thinks a little, so the whole burst is in flight at once.
CALL = ScriptedReply(content="An answer.", prompt_tokens=1_000, completion_tokens=1_000, delay=0.3)
ONE_CALL_CENTS = 2


async def agent_and_key(
    live: LiveDeployment, owner: Account, budget_cents: int | None
) -> tuple[str, str, str]:
    """An agent on GPT-4o without tools, answering 1,000 tokens at most, and a chat key: (slug, key, its
    id)."""
    agent = await live.client.post(
        "/api/v1/agents",
        json={"name": "Under fire", "model": "openai/gpt-4o", "tools": [], "max_tokens": 1_000},
        headers=owner.headers,
    )
    assert agent.status_code == 201, agent.text
    fields: dict[str, object] = {"label": "burst", "scopes": ["chat"], "rate_limit_per_minute": 10_000}
    if budget_cents is not None:
        fields["monthly_budget_cents"] = budget_cents
    key = await live.client.post("/api/v1/api-keys", json=fields, headers=owner.headers)
    assert key.status_code == 201, key.text
    return str(agent.json()["slug"]), str(key.json()["key"]), str(key.json()["id"])


async def burst(live: LiveDeployment, slug: str, key: str, calls: int = BURST) -> list[int]:
    """``calls`` chat completions at once, half of them naming an end user (their exchange is kept)."""

    async def one(n: int) -> int:
        body: dict[str, object] = {"model": slug, "messages": [{"role": "user", "content": f"question {n}"}]}
        if n % 2:
            body["user"] = f"person-{n}"
        answer = await live.client.post("/v1/chat/completions", json=body, headers={"X-API-Key": key})
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
        return answer.status_code

    return list(await asyncio.gather(*(one(n) for n in range(calls))))


async def holds_of(live: LiveDeployment, org_id: str) -> int:
    return int(
        await live.session.scalar(
            select(func.count()).select_from(SpendHold).where(SpendHold.org_id == org_id)
        )
        or 0
    )


async def test_a_burst_spends_a_key_budget_and_no_more_than_one_call_past_it(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    slug, key, _ = await agent_and_key(live, owner, budget_cents=30)
    fake_llm.script(*[CALL] * BURST)

    statuses = await burst(live, slug, key)

    assert set(statuses) <= {200, 402, 429}, statuses
    answered = statuses.count(200)
    assert answered >= 30 // ONE_CALL_CENTS and answered < BURST  # the budget is used, then calls refused
    spent = await live.session.scalar(select(func.sum(ApiKeySpend.spent_cents)))
    assert spent == answered * ONE_CALL_CENTS  # every answer charged ...
    assert spent <= 30 + ONE_CALL_CENTS  # ... and the budget passed by one call at most
    assert await holds_of(live, owner.org.id) == 0  # each hold went with its answer

    if spent >= 30:
        after = await live.client.post(
            "/v1/chat/completions",
            json={"model": slug, "messages": [{"role": "user", "content": "more"}]},
            headers={"X-API-Key": key},
        )
        assert after.status_code == 402 and "monthly budget" in after.json()["error"]["message"]


async def test_a_burst_spends_an_orgs_credits_and_no_more_than_one_call_past_them(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    slug, key, _ = await agent_and_key(live, owner, budget_cents=None)
    await live.session.execute(update(Org).where(Org.id == owner.org.id).values(plan="metered"))
    live.session.add(Balance(org_id=owner.org.id, credits_cents=30))
    await live.session.commit()
    fake_llm.script(*[CALL] * BURST)

    statuses = await burst(live, slug, key)

    assert set(statuses) <= {200, 402, 429}, statuses
    answered = statuses.count(200)
    assert 0 < answered < BURST
    cost = await live.session.scalar(
        select(func.sum(UsageDaily.cost_micro_usd)).where(UsageDaily.org_id == owner.org.id)
    )
    assert cost == answered * 12_500  # 1.25 cents each, in millionths of a dollar ...
    assert cost <= (30 + ONE_CALL_CENTS) * 10_000  # ... passing the credits by one call at most
    left = await live.session.scalar(select(Balance.credits_cents).where(Balance.org_id == owner.org.id))
    assert left == max(0, 30 - cost // 10_000)  # charged whole cents, never below zero
    assert await holds_of(live, owner.org.id) == 0


async def test_a_hold_keeps_what_is_left_until_its_turn_ends_and_stops_counting_when_it_expires(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    slug, key, key_id = await agent_and_key(live, owner, budget_cents=30)
    now = datetime.now(UTC)
    holds = SpendHolds(live.session)
    # A call in flight (another process) holds the whole budget: the next call waits its turn.
    assert await holds.take("turn_in_flight", owner.org.id, 30, now, key=(key_id, 30), credits=False)
    await live.session.commit()
    question = {"model": slug, "messages": [{"role": "user", "content": "hello"}], "user": "someone"}
    refused = await live.client.post("/v1/chat/completions", json=question, headers={"X-API-Key": key})
    assert (
        refused.status_code == 429 and "held by its calls still running" in refused.json()["error"]["message"]
    )
    assert await live.session.scalar(select(func.count()).select_from(Message)) == 0  # nothing kept ...
    assert await live.session.scalar(select(func.sum(UsageMonthly.messages))) in (None, 0)  # ... or counted

    # Its process died: once the hold expires, it stops counting, and the hourly purge deletes it.
    await live.session.execute(
        update(SpendHold)
        .values(expires_at=now - timedelta(seconds=1))
        .where(SpendHold.reference == "turn_in_flight")
    )
    await live.session.commit()
    fake_llm.script(CALL)
    answered = await live.client.post("/v1/chat/completions", json=question, headers={"X-API-Key": key})
    assert answered.status_code == 200, answered.text
    assert await holds.purge_expired(now + HOLD_TTL) == 1
    await live.session.commit()
    assert await holds_of(live, owner.org.id) == 0


async def test_each_request_of_a_tool_loop_is_held_before_it_is_made_and_the_loop_stops_at_the_cap(
    live: LiveDeployment, settings: Settings, fake_llm: FakeLLMServer
) -> None:
    owner = await create_account(live.session, settings)
    agent = await live.client.post(
        "/api/v1/agents",
        json={"name": "Clock", "model": "openai/gpt-4o", "tools": ["current_time"], "max_tokens": 1_000},
        headers=owner.headers,
    )
    key = await live.client.post(
        "/api/v1/api-keys",
        json={"label": "loop", "scopes": ["chat"], "monthly_budget_cents": 4},
        headers=owner.headers,
    )
    headers = {"X-API-Key": key.json()["key"]}
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}
    request = ScriptedReply(tool_calls=[tool_call], prompt_tokens=1_000, completion_tokens=1_000)
    answer = ScriptedReply(content="It is noon.", prompt_tokens=1_000, completion_tokens=1_000)
    question = {
        "model": agent.json()["slug"],
        "messages": [{"role": "user", "content": "time?"}],
        "user": "ana",
    }

    # 4 cents of room: each request holds 2 before it is made, so both requests of the first call run.
    fake_llm.script(request, answer)
    first = await live.client.post("/v1/chat/completions", json=question, headers=headers)
    assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == "It is noon."
    assert len(fake_llm.requests) == 2
    # 1 cent left: the second call is admitted, but its loop stops before a request it has no room for.
    fake_llm.script(request, answer)
    second = await live.client.post("/v1/chat/completions", json=question, headers=headers)
    assert second.status_code == 502
    assert len(fake_llm.requests) == 3  # the second request was never made

    spent = await live.session.scalar(select(func.sum(ApiKeySpend.spent_cents)))
    assert spent == 3 + 2  # 2.5 cents, then the one request made (1.25): whole cents, rounded up
    stopped = await live.session.scalar(
        select(Message).where(Message.org_id == owner.org.id).order_by(Message.seq.desc()).limit(1)
    )
    assert stopped is not None and stopped.error is not None and "stop before finishing" in stopped.error
    assert stopped.cost_micro_usd == 12_500  # what it spent is recorded and charged
    assert await holds_of(live, owner.org.id) == 0
