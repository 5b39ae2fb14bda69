"""The web_search tool through real turns: each provider's answer reaches the model as citable results;
a provider failing or slow is a polite answer; no provider means no tool; the key stays secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.conversations.models import Message
from hutch.resources import Resources
from hutch.settings import Settings, SettingsError, WebSearchProvider, load_settings
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.web_search import BRAVE_KEY, TAVILY_KEY, FakeSearchServer


@pytest.fixture(scope="module")
def search_server() -> Iterator[FakeSearchServer]:
    server = FakeSearchServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def search(search_server: FakeSearchServer) -> FakeSearchServer:
    search_server.reset()
    return search_server


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings)


def configure(resources: Resources, provider: WebSearchProvider | None, **changes: Any) -> None:
    """The deployment as if started with these web search settings."""
    resources.settings = resources.settings.model_copy(update={"web_search_provider": provider, **changes})
    resources.llm.settings = resources.settings  # what agents' tool checks read


def use(resources: Resources, search: FakeSearchServer, provider: WebSearchProvider, **changes: Any) -> None:
    key = {WebSearchProvider.BRAVE: BRAVE_KEY, WebSearchProvider.TAVILY: TAVILY_KEY}.get(provider)
    defaults = {"web_search_url": search.base_url, "web_search_api_key": SecretStr(key) if key else None}
    configure(resources, provider, **{**defaults, **changes})


def searching(query: str) -> ScriptedReply:
    call = {
        "id": "call_s",
        "type": "function",
        "function": {"name": "web_search", "arguments": json.dumps({"query": query})},
    }
    return ScriptedReply(tool_calls=[call])


async def new_agent(client: AsyncClient, owner: Account, tools: list[str]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/agents",
        json={"name": "Scout", "model": "openai/gpt-4o", "tools": tools},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def ask(client: AsyncClient, owner: Account, agent: dict[str, Any], text: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": text}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()["message"]
    return message


def tool_result(fake_llm: FakeLLMServer) -> str:
    """What the model was given back from its web_search call."""
    sent = fake_llm.requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool", sent[-1]
    content: str = sent[-1]["content"]
    return content


@pytest.mark.parametrize("provider", list(WebSearchProvider))
async def test_results_reach_the_model_with_titles_addresses_and_snippets(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
    provider: WebSearchProvider,
) -> None:
    use(resources, search, provider)
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("what is hutch"), ScriptedReply(content="Hutch runs AI assistants [1]."))

    message = await ask(client, owner, agent, "What is Hutch?")

    assert message["status"] == "ok" and message["content"] == "Hutch runs AI assistants [1]."
    assert [(r.provider, r.query) for r in search.requests] == [(provider.value, "what is hutch")]
    result = tool_result(fake_llm)
    assert "Hutch — run your own AI assistant business" in result
    assert "https://hutch.example/" in result
    assert "open-source platform to run AI assistants" in result
    assert "<strong>" not in result  # Brave's match markup is gone
    assert "https://docs.hutch.example/self-hosting" in result
    assert "Starsky" not in result and "news.example" not in result  # five results at most
    assert len(result) < 3500  # snippets are cut short
    assert "details details" in result and "details " * 100 not in result


async def test_the_key_goes_in_each_providers_header_and_never_in_logs(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for provider in (WebSearchProvider.BRAVE, WebSearchProvider.TAVILY):
        use(resources, search, provider)
        agent = await new_agent(client, owner, ["web_search"])
        fake_llm.script(searching("hutch"), ScriptedReply(content="Found it."))
        message = await ask(client, owner, agent, "Search for Hutch")
        assert message["content"] == "Found it."
        stored = await session.get(Message, message["id"])
        assert stored is not None
        assert BRAVE_KEY not in json.dumps(stored.tool_calls) and TAVILY_KEY not in json.dumps(
            stored.tool_calls
        )

    brave, tavily = search.requests
    assert brave.headers["x-subscription-token"] == BRAVE_KEY and BRAVE_KEY not in brave.path
    assert tavily.headers["authorization"] == f"Bearer {TAVILY_KEY}"
    assert tavily.body is not None and TAVILY_KEY not in json.dumps(tavily.body)
    assert "results for 'hutch'" in tool_result(fake_llm).lower()

    output = capsys.readouterr()
    for key in (BRAVE_KEY, TAVILY_KEY):
        assert key not in caplog.text and key not in output.out and key not in output.err
    assert BRAVE_KEY not in repr(resources.settings) and TAVILY_KEY not in repr(resources.settings)


async def test_a_wrong_key_is_a_polite_failure(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.BRAVE, web_search_api_key=SecretStr("BSA-wrong"))
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("hutch"), ScriptedReply(content="Search is down, sorry."))
    message = await ask(client, owner, agent, "Search for Hutch")
    assert message["status"] == "ok"
    result = tool_result(fake_llm)
    assert "did not work" in result and "HTTP 422" in result and "BSA-wrong" not in result


@pytest.mark.parametrize("provider", list(WebSearchProvider))
async def test_a_provider_error_is_a_polite_answer_not_a_failed_turn(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
    provider: WebSearchProvider,
) -> None:
    use(resources, search, provider)
    search.state.status = 500
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("hutch"), ScriptedReply(content="I could not search just now."))

    message = await ask(client, owner, agent, "Search for Hutch")

    assert message["status"] == "ok" and message["content"] == "I could not search just now."
    result = tool_result(fake_llm)
    assert "did not work" in result and "HTTP 500" in result
    assert "internal error" not in result  # the provider's body stays out


async def test_a_slow_provider_times_out_politely(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.SEARXNG, web_search_timeout_seconds=0.3)
    search.state.delay = 1.5
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("hutch"), ScriptedReply(content="Search was too slow."))

    message = await ask(client, owner, agent, "Search for Hutch")

    assert message["status"] == "ok" and message["content"] == "Search was too slow."
    assert "did not answer in time" in tool_result(fake_llm)


async def test_an_answer_that_is_not_json_is_a_polite_failure(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.SEARXNG)
    search.state.html = True
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("hutch"), ScriptedReply(content="No luck."))
    message = await ask(client, owner, agent, "Search for Hutch")
    assert message["status"] == "ok" and "did not work" in tool_result(fake_llm)


async def test_without_a_provider_agents_cannot_enable_web_search(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    configure(resources, None, web_search_url=None, web_search_api_key=None)
    response = await client.post(
        "/api/v1/agents", json={"name": "Scout", "tools": ["web_search"]}, headers=owner.headers
    )
    assert response.status_code == 422
    assert "web_search" in response.text and "HUTCH_WEB_SEARCH_PROVIDER" in response.text

    agent = await new_agent(client, owner, ["current_time"])
    patched = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"tools": ["current_time", "web_search"]}, headers=owner.headers
    )
    assert patched.status_code == 422 and "HUTCH_WEB_SEARCH_PROVIDER" in patched.text


async def test_an_agent_keeping_web_search_after_the_provider_is_removed_hears_it_is_not_set_up(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.SEARXNG)
    agent = await new_agent(client, owner, ["web_search", "current_time"])
    configure(resources, None, web_search_url=None, web_search_api_key=None)

    kept = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"tools": ["web_search"]}, headers=owner.headers
    )
    assert kept.status_code == 200, kept.text  # editing an agent still works
    fake_llm.script(searching("hutch"), ScriptedReply(content="I cannot search the web here."))
    message = await ask(client, owner, agent, "Search for Hutch")

    assert message["status"] == "ok" and message["content"] == "I cannot search the web here."
    assert "not set up" in tool_result(fake_llm) and not search.requests


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"HUTCH_WEB_SEARCH_PROVIDER": "searxng"}, "requires HUTCH_WEB_SEARCH_URL"),
        ({"HUTCH_WEB_SEARCH_PROVIDER": "brave"}, "requires HUTCH_WEB_SEARCH_API_KEY"),
        (
            {"HUTCH_WEB_SEARCH_PROVIDER": "tavily", "HUTCH_WEB_SEARCH_API_KEY": ""},
            "requires HUTCH_WEB_SEARCH_API_KEY",
        ),
        ({"HUTCH_WEB_SEARCH_PROVIDER": "google"}, "Invalid setting HUTCH_WEB_SEARCH_PROVIDER"),
        ({"HUTCH_WEB_SEARCH_API_KEY": "k"}, "without HUTCH_WEB_SEARCH_PROVIDER"),
        (
            {"HUTCH_WEB_SEARCH_PROVIDER": "searxng", "HUTCH_WEB_SEARCH_URL": "searxng:8080"},
            "Invalid setting HUTCH_WEB_SEARCH_URL",
        ),
    ],
)
def test_incomplete_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: dict[str, str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_complete_provider_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUTCH_WEB_SEARCH_PROVIDER", "tavily")
    monkeypatch.setenv("HUTCH_WEB_SEARCH_API_KEY", TAVILY_KEY)
    settings = load_settings()
    assert settings.web_search_provider is WebSearchProvider.TAVILY and settings.web_search_url is None
    assert TAVILY_KEY not in repr(settings)


async def test_searches_are_timed_counted_and_costed_on_the_answer_and_the_orgs_usage(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.BRAVE)  # Brave's list price: $0.005 a query
    agent = await new_agent(client, owner, ["web_search", "current_time"])
    fake_llm.script(
        ScriptedReply(
            tool_calls=[
                searching("hutch").tool_calls[0],  # type: ignore[index]
                {"id": "call_t", "type": "function", "function": {"name": "current_time", "arguments": "{}"}},
            ]
        ),
        ScriptedReply(content="Found it."),
    )

    answer = await client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": "Look it up"}, headers=owner.headers
    )
    message, conversation = answer.json()["message"], answer.json()["conversation_id"]

    search_call, time_call = message["tool_calls"]
    assert search_call["name"] == "web_search" and search_call["metered"] is True
    assert search_call["cost_micro_usd"] == 5000 and search_call["ms"] >= 0
    assert time_call["name"] == "current_time" and "metered" not in time_call and time_call["ms"] >= 0
    stored = await client.get(f"/api/v1/conversations/{conversation}", headers=owner.headers)
    assert stored.json()["messages"][-1]["tool_calls"] == message["tool_calls"]
    cost = stored.json()["messages"][-1]["cost_micro_usd"]
    assert cost >= 5000  # the model's tokens and the search
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()["usage"]
    assert usage["tool_calls_this_month"] == 1
    assert usage["tool_cost_micro_usd_this_month"] == 5000
    assert usage["cost_micro_usd_this_month"] == cost


async def test_past_the_plans_tool_calls_the_model_hears_so_and_the_turn_answers(
    client: AsyncClient,
    session: AsyncSession,
    owner: Account,
    fake_llm: FakeLLMServer,
    resources: Resources,
    search: FakeSearchServer,
) -> None:
    use(resources, search, WebSearchProvider.SEARXNG)
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="one-tool-call"))
    await session.commit()
    agent = await new_agent(client, owner, ["web_search"])
    fake_llm.script(searching("first"), ScriptedReply(content="One."))
    first = await ask(client, owner, agent, "Search once")
    assert first["tool_calls"][0]["metered"] is True and len(search.requests) == 1

    fake_llm.script(searching("second"), ScriptedReply(content="From what I know."))
    second = await ask(client, owner, agent, "Search again")

    assert second["status"] == "ok" and second["content"] == "From what I know."
    assert "1 calls to outside tools a month and they are used up" in tool_result(fake_llm)
    assert len(search.requests) == 1  # the provider was not asked
    usage = (await client.get("/api/v1/billing/usage", headers=owner.headers)).json()
    assert usage["usage"]["tool_calls_this_month"] == 1 and usage["limits"]["tool_calls_per_month"] == 1
