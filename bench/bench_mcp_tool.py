"""A turn that calls one MCP tool: Hutch's own time around the tool, next to the SDK calling it directly.

An MCP server built with the official SDK (the tests' `tests/fakes/mcp.py`, streamable HTTP on 127.0.0.1)
answers `add`; the tests' fake OpenAI-compatible server plays the model, asking for the tool and then
answering. Each round times, one after the other:

- the tool called directly with the SDK on a session held open (what the tool itself costs);
- the tool called directly with the SDK on a fresh session (connect, handshake, call, close);
- a whole turn through Hutch's engine (`Engine.run`: two model requests over HTTP and the MCP call through
  Hutch's held session, egress guard and result handling);
- the same turn shape calling the built-in `current_time` instead (two model requests, a local tool).

Hutch's overhead for the MCP tool is the MCP turn minus the built-in turn minus the held direct call.
Target: at most 5 ms at the median. `--rounds N` (default 300; `--quick` or `BENCH_QUICK=1`: 60).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from mcp import Client
from pydantic import SecretStr

from common import ROOT, print_table
from hutch.agents.models import Agent, AgentStatus, Audience, Placement
from hutch.core.metrics import Metrics
from hutch.engine.catalog import load_catalog
from hutch.engine.deps import EngineDeps
from hutch.engine.gateway import LLMGateway
from hutch.engine.runner import Engine, TurnRequest
from hutch.integrations.gateway import McpClients, McpEndpoint
from hutch.integrations.models import McpTransport
from hutch.integrations.tools import ConnectedTool, build_tools
from hutch.settings import Settings

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.mcp import McpTestServer

ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


class NoFacts:
    async def add(self, end_user: str, fact: str) -> None: ...

    async def forget(self, end_user: str, about: str) -> int:
        return 0

    async def count(self, end_user: str) -> int:
        return 0


def calling(name: str, arguments: dict[str, int | str]) -> ScriptedReply:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return ScriptedReply(tool_calls=[call])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(rounds: int) -> None:
    mcp_server, llm_server = McpTestServer(), FakeLLMServer()
    mcp_server.start()
    llm_server.start()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        openai_api_key=SecretStr("sk-bench"),
        openai_base_url=llm_server.api_base,
        llm_max_retries=0,
        egress_allow=["127.0.0.1"],
        provider_urls_allow_private=True,
    )
    llm = LLMGateway(settings, load_catalog(settings))
    engine = Engine(llm, Metrics(), settings)
    clients = McpClients()
    endpoint = McpEndpoint("mcp_bench", mcp_server.url, McpTransport.STREAMABLE_HTTP)
    tool = ConnectedTool("mcp:mcp_bench:add", "add", "Add two whole numbers.", ADD_SCHEMA, mcp=endpoint)
    agent = Agent(
        id="agt_bench",
        org_id="org_bench",
        slug="bench",
        name="Bench",
        role="assistant",
        system_prompt="You add numbers.",
        model="openai/gpt-4o-mini",
        temperature=Decimal("0.2"),
        max_tokens=256,
        audience=Audience.PUBLIC,
        placement=Placement.SHARED,
        tools=["current_time", tool.ref],
        status=AgentStatus.ACTIVE,
    )
    primary = llm.resolve(agent.model, {})

    def request(tools: list[str], connected: list[ConnectedTool]) -> TurnRequest:
        deps = EngineDeps(
            facts=NoFacts(),
            settings=settings,
            agent=agent,
            org_id=agent.org_id,
            org_name="Bench",
            end_user=None,
            conversation_id=None,
            channel="bench",
            now=datetime.now(UTC),
        )
        return TurnRequest(
            instructions=agent.system_prompt,
            history=[],
            prompt="What is 2 + 40?",
            deps=deps,
            primary=primary,
            fallback=None,
            tools=tools,
            temperature=0.2,
            max_tokens=256,
            extra_tools=build_tools(connected, clients, settings, taken=tools),
        )

    timings: dict[str, list[float]] = {"held": [], "fresh": [], "mcp_turn": [], "builtin_turn": []}
    async with Client(mcp_server.url) as held:
        for n in range(rounds + 5):  # the first rounds warm up connections and sessions
            started = time.perf_counter()
            await held.call_tool("add", {"a": 2, "b": 40})
            held_ms = (time.perf_counter() - started) * 1000

            started = time.perf_counter()
            async with Client(mcp_server.url) as fresh:
                await fresh.call_tool("add", {"a": 2, "b": 40})
            fresh_ms = (time.perf_counter() - started) * 1000

            llm_server.script(calling("add", {"a": 2, "b": 40}), ScriptedReply(content="42."))
            started = time.perf_counter()
            outcome = await engine.run(request([], [tool]))
            mcp_ms = (time.perf_counter() - started) * 1000
            assert outcome.ok and outcome.tool_calls[0]["result"] == "42", outcome

            llm_server.script(calling("current_time", {}), ScriptedReply(content="Noon."))
            started = time.perf_counter()
            outcome = await engine.run(request(["current_time"], []))
            builtin_ms = (time.perf_counter() - started) * 1000
            assert outcome.ok and outcome.tool_calls, outcome
            if n >= 5:
                for key, value in zip(timings, (held_ms, fresh_ms, mcp_ms, builtin_ms), strict=True):
                    timings[key].append(value)
    await clients.close()
    await llm.close()
    mcp_server.stop()
    llm_server.stop()

    labels = {
        "held": "SDK call, held session",
        "fresh": "SDK call, fresh session",
        "mcp_turn": "Hutch turn calling the MCP tool",
        "builtin_turn": "Hutch turn calling a built-in tool",
    }
    rows: list[list[object]] = [
        [labels[key], percentile(values, 0.5), percentile(values, 0.99)] for key, values in timings.items()
    ]
    overhead = [
        m - b - h
        for m, b, h in zip(timings["mcp_turn"], timings["builtin_turn"], timings["held"], strict=True)
    ]
    rows.append(
        [
            "Hutch's MCP overhead (turn - built-in turn - held call)",
            statistics.median(overhead),
            percentile(overhead, 0.99),
        ]
    )
    print_table(f"One MCP tool call in a turn ({rounds} rounds, ms)", ["", "p50", "p99"], rows)
    verdict = "meets" if statistics.median(overhead) <= 5 else "misses"
    print(f"\n  Median overhead {statistics.median(overhead):.2f} ms {verdict} the 5 ms target.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    logging.disable(logging.INFO)
    asyncio.run(main(args.rounds or (60 if quick else 300)))
