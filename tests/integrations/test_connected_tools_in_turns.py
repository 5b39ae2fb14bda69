"""Connected tools in real turns: the model calls MCP tools and webhook tools; failures, hangs, huge answers
and servers that disappear are polite answers to the model, and the turn still answers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx2
from httpx import AsyncClient
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST

from hutch.integrations.gateway import never_ran
from hutch.resources import Resources
from tests.engine.test_web_search import ask, new_agent, tool_result
from tests.factories import Account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.mcp import McpTestServer, WebhookServer
from tests.integrations.conftest import configure, connect


def calling(name: str, arguments: dict[str, Any]) -> ScriptedReply:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return ScriptedReply(tool_calls=[call])


def offered(fake_llm: FakeLLMServer) -> dict[str, Any]:
    return {t["function"]["name"]: t["function"] for t in fake_llm.requests[0].body.get("tools", [])}


async def test_the_model_calls_an_mcp_tool_and_the_call_is_recorded(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer, fake_llm: FakeLLMServer
) -> None:
    server = await connect(client, owner, mcp_server.url)
    ref = f"mcp:{server['id']}:add"
    agent = await new_agent(client, owner, ["current_time", ref])
    fake_llm.script(calling("add", {"a": 2, "b": 40}), ScriptedReply(content="It makes 42."))

    message = await ask(client, owner, agent, "What is 2 + 40?")

    assert message["status"] == "ok" and message["content"] == "It makes 42."
    assert set(offered(fake_llm)) == {"current_time", "add"}
    assert offered(fake_llm)["add"]["description"] == "Add two whole numbers."
    assert tool_result(fake_llm) == "42"
    [call] = message["tool_calls"]
    assert call["tool"] == ref and call["ok"] is True and call["ms"] >= 0
    assert call["args"] == {"a": 2, "b": 40}


async def test_tool_names_providers_refuse_are_made_safe(
    client: AsyncClient, owner: Account, local: Resources, sse_server: McpTestServer, fake_llm: FakeLLMServer
) -> None:
    server = await connect(client, owner, sse_server.url)
    ref = f"mcp:{server['id']}:lookup.order"
    agent = await new_agent(client, owner, [ref])
    fake_llm.script(calling("lookup_order", {"order_id": "A-17"}), ScriptedReply(content="Shipped."))

    message = await ask(client, owner, agent, "Where is order A-17?")

    assert set(offered(fake_llm)) == {"lookup_order"}
    assert json.loads(tool_result(fake_llm)) == {"order_id": "A-17", "status": "shipped"}
    assert message["tool_calls"][0]["tool"] == ref


async def test_a_tool_that_fails_is_a_polite_answer(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer, fake_llm: FakeLLMServer
) -> None:
    server = await connect(client, owner, mcp_server.url)
    agent = await new_agent(client, owner, [f"mcp:{server['id']}:fail"])
    fake_llm.script(calling("fail", {}), ScriptedReply(content="The shop tool is down."))

    message = await ask(client, owner, agent, "Check the shop")

    assert message["status"] == "ok" and message["content"] == "The shop tool is down."
    assert tool_result(fake_llm).startswith("The tool fail reported an error")
    assert message["tool_calls"][0]["ok"] is False


async def test_a_tool_that_hangs_times_out_politely(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer, fake_llm: FakeLLMServer
) -> None:
    server = await connect(client, owner, mcp_server.url)
    configure(local, tool_timeout_seconds=0.5)
    agent = await new_agent(client, owner, [f"mcp:{server['id']}:hang"])
    fake_llm.script(calling("hang", {"seconds": 10}), ScriptedReply(content="Too slow, sorry."))

    message = await ask(client, owner, agent, "Wait for it")

    assert message["status"] == "ok" and message["content"] == "Too slow, sorry."
    result = tool_result(fake_llm)
    assert result.startswith("The tool hang did not answer") and "0.5 seconds" in result
    assert message["tool_calls"][0]["ok"] is False and message["tool_calls"][0]["ms"] < 3000


async def test_a_huge_answer_is_cut_with_a_note(
    client: AsyncClient, owner: Account, local: Resources, mcp_server: McpTestServer, fake_llm: FakeLLMServer
) -> None:
    server = await connect(client, owner, mcp_server.url)
    agent = await new_agent(client, owner, [f"mcp:{server['id']}:huge"])
    fake_llm.script(calling("huge", {"size": 300_000}), ScriptedReply(content="That was a lot."))

    message = await ask(client, owner, agent, "Give me everything")

    result = tool_result(fake_llm)
    assert result.startswith("y" * 1000) and len(result) < 66_000
    assert "the tool answered 300000 characters; only the first 65536 are shown" in result
    assert message["content"] == "That was a lot."


async def test_a_server_that_disappears_makes_the_tool_fail_not_the_turn(
    client: AsyncClient, owner: Account, local: Resources, fake_llm: FakeLLMServer
) -> None:
    vanishing = McpTestServer()
    vanishing.start()
    try:
        server = await connect(client, owner, vanishing.url)
        agent = await new_agent(client, owner, [f"mcp:{server['id']}:add"])
        fake_llm.script(calling("add", {"a": 1, "b": 1}), ScriptedReply(content="Two."))
        assert (await ask(client, owner, agent, "1 + 1?"))["content"] == "Two."  # a session is now held
    finally:
        vanishing.stop()
    fake_llm.reset()
    fake_llm.script(calling("add", {"a": 1, "b": 2}), ScriptedReply(content="I cannot add right now."))

    message = await ask(client, owner, agent, "1 + 2?")

    assert message["status"] == "ok" and message["content"] == "I cannot add right now."
    assert tool_result(fake_llm).startswith("The tool add did not answer")


async def test_a_webhook_tool_gets_signed_arguments_and_its_json_reaches_the_model(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    webhook_server: WebhookServer,
    fake_llm: FakeLLMServer,
) -> None:
    created = await client.post(
        "/api/v1/webhook-tools",
        json={
            "name": "get_weather",
            "description": "The weather now in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "url": webhook_server.url,
        },
        headers=owner.headers,
    )
    tool = created.json()
    webhook_server.state.secret = tool["signing_secret"]
    agent = await new_agent(client, owner, [f"webhook:{tool['id']}"])
    fake_llm.script(calling("get_weather", {"city": "Lyon"}), ScriptedReply(content="Clear, 21 °C."))

    message = await ask(client, owner, agent, "Weather in Lyon?")

    [call] = webhook_server.state.calls
    assert call.signature_ok and json.loads(call.body) == {"city": "Lyon"}
    expected = "sha256=" + hmac.new(tool["signing_secret"].encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["x-hutch-signature"] == expected
    assert json.loads(tool_result(fake_llm)) == {"temperature_c": 21, "sky": "clear"}
    assert message["content"] == "Clear, 21 °C."
    assert message["tool_calls"][0]["tool"] == f"webhook:{tool['id']}" and message["tool_calls"][0]["ok"]
    assert tool["signing_secret"] not in json.dumps(message)


async def test_a_webhook_error_or_refusal_is_a_polite_answer(
    client: AsyncClient,
    owner: Account,
    local: Resources,
    webhook_server: WebhookServer,
    fake_llm: FakeLLMServer,
) -> None:
    created = await client.post(
        "/api/v1/webhook-tools",
        json={"name": "get_weather", "description": "Weather.", "url": webhook_server.url},
        headers=owner.headers,
    )
    tool = created.json()
    webhook_server.state.secret = tool["signing_secret"]
    webhook_server.state.status = 500
    agent = await new_agent(client, owner, [f"webhook:{tool['id']}"])
    fake_llm.script(calling("get_weather", {}), ScriptedReply(content="Weather is unavailable."))
    message = await ask(client, owner, agent, "Weather?")
    assert tool_result(fake_llm).startswith("The tool get_weather reported an error: HTTP 500")
    assert message["content"] == "Weather is unavailable."

    # The operator closes loopback again: the call is refused, politely.
    configure(local, egress_allow=[])
    fake_llm.reset()
    fake_llm.script(calling("get_weather", {}), ScriptedReply(content="Still unavailable."))
    message = await ask(client, owner, agent, "Weather?")
    assert tool_result(fake_llm).startswith("The tool get_weather did not answer (refused:")
    assert message["status"] == "ok"


async def test_a_server_that_restarted_is_called_again_on_a_new_session(
    client: AsyncClient, owner: Account, local: Resources, fake_llm: FakeLLMServer
) -> None:
    first = McpTestServer()
    first.start()
    restarted = McpTestServer()
    try:
        server = await connect(client, owner, first.url)
        agent = await new_agent(client, owner, [f"mcp:{server['id']}:add"])
        fake_llm.script(calling("add", {"a": 1, "b": 1}), ScriptedReply(content="Two."))
        assert (await ask(client, owner, agent, "1 + 1?"))["content"] == "Two."  # a session is now held
        first.stop()
        restarted.port = first.port  # the same address; the held session means nothing to it
        restarted.start()
        fake_llm.reset()
        fake_llm.script(calling("add", {"a": 1, "b": 2}), ScriptedReply(content="Three."))

        message = await ask(client, owner, agent, "1 + 2?")

        assert message["content"] == "Three." and tool_result(fake_llm) == "3"
    finally:
        restarted.stop()
        first.stop()


def test_only_a_call_that_certainly_did_not_run_is_made_again() -> None:
    terminated = MCPError(INVALID_REQUEST, "Session terminated")
    refused = httpx2.ConnectError("connection refused")
    assert never_ran(terminated) and never_ran(refused)
    assert never_ran(ExceptionGroup("task group", [RuntimeError("closing"), refused]))
    try:
        raise RuntimeError("the stream broke") from refused
    except RuntimeError as wrapped:
        assert never_ran(wrapped)
    # The request may have reached the tool before these: calling again could do its work twice.
    assert not never_ran(httpx2.ReadError("connection reset"))
    assert not never_ran(MCPError(INTERNAL_ERROR, "Server returned an error response"))
    assert not never_ran(TimeoutError())
