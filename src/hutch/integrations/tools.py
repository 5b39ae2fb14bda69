"""Connected tools in a turn: which an agent enables, read as plain data in phase 1, and the pydantic-ai tools
built from them in phase 2 (holding no database connection while they run).

An agent's ``tools`` name them ``mcp:<server id>:<tool name>`` and ``webhook:<tool id>``. Providers accept
only ``^[a-zA-Z0-9_-]{1,64}$`` as tool names, so the model sees a safe name derived from the tool's own;
each recorded call says which tool it was (``tool``), how long it took (``ms``) and whether it worked
(``ok``). A tool that fails, hangs or is refused answers the model a polite sentence: never the turn.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext, Tool
from pydantic_ai.messages import ToolReturn
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.core.egress import EgressPolicy
from hutch.core.security import SecretBox
from hutch.engine.deps import EngineDeps
from hutch.integrations.gateway import McpEndpoint, McpFailed, McpGateway, ToolAnswer, endpoint_headers
from hutch.integrations.models import McpServer, WebhookTool
from hutch.integrations.repository import McpServerRepository, WebhookToolRepository
from hutch.integrations.webhooks import WebhookFailed, call_webhook
from hutch.settings import Settings

MCP_PREFIX = "mcp:"
WEBHOOK_PREFIX = "webhook:"
SAFE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def is_connected(name: str) -> bool:
    return name.startswith((MCP_PREFIX, WEBHOOK_PREFIX))


@dataclass(frozen=True)
class ToolRef:
    kind: str  # "mcp" or "webhook"
    owner_id: str  # the server's or the webhook tool's id
    tool_name: str | None = None  # an MCP server's tool

    @classmethod
    def parse(cls, name: str) -> ToolRef | None:
        if name.startswith(MCP_PREFIX):
            server_id, sep, tool = name[len(MCP_PREFIX) :].partition(":")
            return cls("mcp", server_id, tool) if sep and server_id and tool else None
        if name.startswith(WEBHOOK_PREFIX):
            tool_id = name[len(WEBHOOK_PREFIX) :]
            return cls("webhook", tool_id) if tool_id and ":" not in tool_id else None
        return None


@dataclass(frozen=True)
class ConnectedTool:
    """One enabled connected tool, decrypted for the turn's calls (kept out of reprs and logs)."""

    ref: str  # as the agent names it: mcp:<server>:<tool> or webhook:<id>
    name: str  # the tool's own name
    description: str
    parameters: dict[str, Any]
    mcp: McpEndpoint | None = field(default=None, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)


def server_headers(secret_box: SecretBox, server: McpServer) -> dict[str, str]:
    if not server.headers_encrypted:
        return {}
    values: dict[str, str] = json.loads(secret_box.decrypt(server.headers_encrypted))
    return values


def endpoint_of(secret_box: SecretBox, server: McpServer) -> McpEndpoint:
    headers = endpoint_headers(server_headers(secret_box, server))
    return McpEndpoint(server.id, server.url, server.transport, headers)


def listed_names(server: McpServer) -> set[str]:
    return {str(tool.get("name")) for tool in server.tools}


@dataclass(frozen=True)
class ConnectedChoice:
    """A connected tool an agent of the org may enable."""

    ref: str
    description: str
    kind: str  # "mcp" or "webhook"
    source: str  # the server's or the webhook tool's name
    title: str  # the tool's own name


async def connected_choices(session: AsyncSession, org_id: str) -> list[ConnectedChoice]:
    """Every connected tool of the org: each tool its MCP servers listed, then its webhook tools."""
    choices = [
        ConnectedChoice(
            f"{MCP_PREFIX}{server.id}:{tool.get('name')}",
            str(tool.get("description") or ""),
            "mcp",
            server.name,
            str(tool.get("name")),
        )
        for server in await McpServerRepository(session).of_org(org_id)
        for tool in server.tools
    ]
    choices += [
        ConnectedChoice(f"{WEBHOOK_PREFIX}{hook.id}", hook.description, "webhook", hook.name, hook.name)
        for hook in await WebhookToolRepository(session).of_org(org_id)
    ]
    return choices


async def unknown_connected(session: AsyncSession, org_id: str, names: Iterable[str]) -> list[str]:
    """The connected tool names (of ``names``) that do not exist in ``org_id``: an unknown or foreign
    server or webhook tool, or a tool the server did not list."""
    refs = {name: ToolRef.parse(name) for name in names if is_connected(name)}
    servers = {
        s.id: s
        for s in await McpServerRepository(session).many(
            org_id, {r.owner_id for r in refs.values() if r and r.kind == "mcp"}
        )
    }
    webhooks = {
        w.id
        for w in await WebhookToolRepository(session).many(
            org_id, {r.owner_id for r in refs.values() if r and r.kind == "webhook"}
        )
    }
    unknown = []
    for name, ref in refs.items():
        if ref is None:
            unknown.append(name)
        elif ref.kind == "mcp":
            server = servers.get(ref.owner_id)
            if server is None or ref.tool_name not in listed_names(server):
                unknown.append(name)
        elif ref.owner_id not in webhooks:
            unknown.append(name)
    return unknown


async def read_connected(
    session: AsyncSession, secret_box: SecretBox, org_id: str, names: Collection[str]
) -> list[ConnectedTool]:
    """The agent's enabled connected tools, in the order it names them; names whose server or webhook tool
    is gone (or whose tool the server no longer lists) are left out."""
    refs = [(name, ToolRef.parse(name)) for name in names if is_connected(name)]
    if not refs:
        return []
    server_ids = {r.owner_id for _, r in refs if r and r.kind == "mcp"}
    webhook_ids = {r.owner_id for _, r in refs if r and r.kind == "webhook"}
    servers = {s.id: s for s in await McpServerRepository(session).many(org_id, server_ids)}
    webhooks = {w.id: w for w in await WebhookToolRepository(session).many(org_id, webhook_ids)}
    endpoints: dict[str, McpEndpoint] = {}
    found: list[ConnectedTool] = []
    for name, ref in refs:
        if ref is None:
            continue
        if ref.kind == "mcp":
            server = servers.get(ref.owner_id)
            listed = (
                next((t for t in server.tools if t.get("name") == ref.tool_name), None) if server else None
            )
            if server is None or listed is None:
                continue
            if server.id not in endpoints:
                endpoints[server.id] = endpoint_of(secret_box, server)
            found.append(
                ConnectedTool(
                    name,
                    str(listed["name"]),
                    str(listed.get("description") or ""),
                    _object_schema(listed.get("input_schema")),
                    mcp=endpoints[server.id],
                )
            )
        elif (webhook := webhooks.get(ref.owner_id)) is not None:
            found.append(_webhook_tool(name, webhook, secret_box))
    return found


def _webhook_tool(ref: str, webhook: WebhookTool, secret_box: SecretBox) -> ConnectedTool:
    return ConnectedTool(
        ref,
        webhook.name,
        webhook.description,
        _object_schema(webhook.parameters),
        webhook_url=webhook.url,
        webhook_secret=secret_box.decrypt(webhook.signing_secret_encrypted),
    )


def _object_schema(schema: Any) -> dict[str, Any]:
    """Providers want an object schema with properties, whatever the server sent."""
    if not isinstance(schema, dict) or not schema:
        return dict(EMPTY_SCHEMA)
    fixed = dict(schema)
    fixed.setdefault("type", "object")
    fixed.setdefault("properties", {})
    return fixed


def model_names(tools: list[ConnectedTool], taken: Collection[str]) -> list[str]:
    """A name per tool that providers accept and that no other tool of the turn has."""
    used = set(taken)
    names = []
    for tool in tools:
        base = UNSAFE_CHARS.sub("_", tool.name).strip("_")[:64] or "tool"
        candidate, n = base, 2
        while candidate in used:
            suffix = f"_{n}"
            candidate, n = base[: 64 - len(suffix)] + suffix, n + 1
        used.add(candidate)
        names.append(candidate)
    return names


def cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return (
        text[:max_chars] + f"\n\n[Cut: the tool answered {len(text)} characters; only the first {max_chars} "
        "are shown.]"
    )


def did_not_answer(name: str, why: str) -> str:
    return (
        f"The tool {name} did not answer ({why}). Tell the user it is unavailable right now if they need it, "
        "and carry on without it."
    )


def build_tools(
    tools: list[ConnectedTool], mcp: McpGateway, settings: Settings, *, taken: Collection[str] = ()
) -> list[Tool[EngineDeps]]:
    """The pydantic-ai tools of a turn's connected tools; ``taken``: the names of its other tools."""
    policy = EgressPolicy.of(settings.egress_allow)
    return [
        _tool(tool, model_name, mcp, policy, settings)
        for tool, model_name in zip(tools, model_names(tools, taken), strict=True)
    ]


def _tool(
    tool: ConnectedTool, model_name: str, mcp: McpGateway, policy: EgressPolicy, settings: Settings
) -> Tool[EngineDeps]:
    time_limit = settings.tool_timeout_seconds
    max_chars = settings.tool_result_max_chars

    async def call(ctx: RunContext[EngineDeps], **arguments: Any) -> ToolReturn[str]:
        started = time.perf_counter()
        try:
            answer: ToolAnswer
            if tool.mcp is not None:
                answer = await mcp.call_tool(tool.mcp, tool.name, arguments, policy, time_limit=time_limit)
            else:
                assert tool.webhook_url is not None and tool.webhook_secret is not None
                answer = await call_webhook(
                    tool.webhook_url,
                    tool.webhook_secret,
                    tool.name,
                    arguments,
                    policy,
                    time_limit=time_limit,
                    call_id=ctx.tool_call_id,
                )
            ok = not answer.is_error
            text = answer.text if ok else f"The tool {tool.name} reported an error: {answer.text}"
        except (McpFailed, WebhookFailed) as exc:
            ok, text = False, did_not_answer(tool.name, str(exc))
        ms = round((time.perf_counter() - started) * 1000, 1)
        return ToolReturn(cap(text, max_chars), metadata={"tool": tool.ref, "ms": ms, "ok": ok})

    built = Tool.from_schema(call, model_name, tool.description or tool.name, tool.parameters, takes_ctx=True)
    built.metadata = {"metered": True}  # a call that reaches outside: counted on the plan's tool calls
    return built
