"""The rules of connected tools: where servers and webhooks may be, what is encrypted, what is listed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from hutch.audit.service import record_audit
from hutch.core.egress import EgressError, EgressPolicy, EgressRefused, check_url
from hutch.core.errors import Conflict, InvalidField, NotFound
from hutch.core.ids import new_id
from hutch.core.principal import Principal
from hutch.core.security import SecretBox
from hutch.db.engine import UnitOfWork
from hutch.db.jobs import WorkerResources
from hutch.integrations.gateway import McpFailed, McpGateway
from hutch.integrations.models import McpServer, McpServerStatus, McpTransport, WebhookTool
from hutch.integrations.repository import McpServerRepository, WebhookToolRepository
from hutch.integrations.schemas import McpServerCreate, WebhookToolCreate, WebhookToolUpdate
from hutch.integrations.tools import MCP_PREFIX, WEBHOOK_PREFIX, endpoint_of
from hutch.integrations.webhooks import new_signing_secret
from hutch.settings import Settings

MAX_LISTED_TOOLS = 200  # kept per server; a server listing more is cut (and says so in its error)


class ConnectedToolService:
    def __init__(self, uow: UnitOfWork, settings: Settings, secret_box: SecretBox, mcp: McpGateway) -> None:
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.secret_box = secret_box
        self.mcp = mcp
        self.servers = McpServerRepository(session)
        self.webhooks = WebhookToolRepository(session)

    @classmethod
    def of(cls, uow: UnitOfWork, resources: WorkerResources) -> ConnectedToolService:
        """The service for a request, a page or a job, from what the process built."""
        return cls(uow, resources.settings, resources.secret_box, resources.mcp)

    @property
    def policy(self) -> EgressPolicy:
        return EgressPolicy.of(self.settings.egress_allow)

    # --- MCP servers -------------------------------------------------------------------------------------

    async def add_server(self, principal: Principal, data: McpServerCreate) -> McpServer:
        """Store the server and list its tools; a server that does not answer is stored as unreachable
        (with why), to be refreshed once it is up."""
        await self._check_url(data.url)
        headers = dict(data.headers or {})
        if data.bearer_token is not None:
            headers["Authorization"] = f"Bearer {data.bearer_token.get_secret_value().strip()}"
        transport = data.transport or (
            McpTransport.SSE
            if urlsplit(data.url).path.rstrip("/").endswith("/sse")
            else McpTransport.STREAMABLE_HTTP
        )
        server = McpServer(
            id=new_id("mcp"),
            org_id=principal.org_id,
            name=data.name,
            url=data.url,
            transport=transport,
            headers_encrypted=self.secret_box.encrypt(json.dumps(headers)) if headers else None,
            header_names=sorted(headers),
            status=McpServerStatus.UNREACHABLE,
            tools=[],
        )
        await self._list_tools(server)
        self.servers.add(server)
        await self.session.flush()
        await self.session.refresh(server, ["created_at", "updated_at"])
        await self._audit(
            principal, "mcp_server_created", server.id, {"name": server.name, "url": server.url}
        )
        return server

    async def page_servers(self, principal: Principal, skip: int, limit: int) -> tuple[list[McpServer], int]:
        return await self.servers.page(principal.org_id, skip, limit)

    async def get_server(
        self, principal: Principal, server_id: str, *, for_update: bool = False
    ) -> McpServer:
        server = await self.servers.get(principal.org_id, server_id, for_update=for_update)
        if server is None:
            raise NotFound("MCP server")
        return server

    async def refresh_server(self, principal: Principal, server_id: str) -> McpServer:
        """List the server's tools again (its status follows)."""
        server = await self.get_server(principal, server_id)
        await self._list_tools(server)
        await self.session.flush()
        await self.session.refresh(server, ["updated_at"])
        return server

    async def delete_server(self, principal: Principal, server_id: str) -> None:
        """Delete the server; agents stop offering its tools (their names leave the agents' tools)."""
        server = await self.get_server(principal, server_id, for_update=True)
        await self.servers.delete(server)
        await self.servers.forget_in_agents(principal.org_id, f"{MCP_PREFIX}{server.id}:%")
        await self._audit(principal, "mcp_server_deleted", server.id, {"name": server.name})

    async def _list_tools(self, server: McpServer) -> None:
        endpoint = endpoint_of(self.secret_box, server)
        # The server may take the whole time limit: nothing is held meanwhile (what was read is kept).
        await self.uow.checkpoint()
        try:
            listed = await self.mcp.list_tools(
                endpoint, self.policy, time_limit=self.settings.tool_timeout_seconds
            )
        except McpFailed as exc:
            server.status, server.error = McpServerStatus.UNREACHABLE, str(exc)
            return
        server.status, server.error = McpServerStatus.CONNECTED, None
        if len(listed) > MAX_LISTED_TOOLS:
            server.error = f"the server lists {len(listed)} tools; only the first {MAX_LISTED_TOOLS} are kept"
        server.tools = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in listed[:MAX_LISTED_TOOLS]
        ]
        server.tools_listed_at = datetime.now(UTC)

    # --- webhook tools -----------------------------------------------------------------------------------

    async def add_webhook(self, principal: Principal, data: WebhookToolCreate) -> tuple[WebhookTool, str]:
        """Store the tool with a new signing secret, returned once here."""
        await self._check_url(data.url)
        if await self.webhooks.name_taken(principal.org_id, data.name):
            raise Conflict(f"Another webhook tool is already named {data.name!r}.")
        secret = new_signing_secret()
        tool = WebhookTool(
            id=new_id("wht"),
            org_id=principal.org_id,
            name=data.name,
            description=data.description,
            parameters=data.parameters,
            url=data.url,
            signing_secret_encrypted=self.secret_box.encrypt(secret),
        )
        self.webhooks.add(tool)
        await self.session.flush()
        await self.session.refresh(tool, ["created_at", "updated_at"])
        await self._audit(principal, "webhook_tool_created", tool.id, {"name": tool.name, "url": tool.url})
        return tool, secret

    async def page_webhooks(
        self, principal: Principal, skip: int, limit: int
    ) -> tuple[list[WebhookTool], int]:
        return await self.webhooks.page(principal.org_id, skip, limit)

    async def get_webhook(
        self, principal: Principal, tool_id: str, *, for_update: bool = False
    ) -> WebhookTool:
        tool = await self.webhooks.get(principal.org_id, tool_id, for_update=for_update)
        if tool is None:
            raise NotFound("Webhook tool")
        return tool

    async def update_webhook(
        self, principal: Principal, tool_id: str, data: WebhookToolUpdate
    ) -> WebhookTool:
        tool = await self.get_webhook(principal, tool_id, for_update=True)
        changes: dict[str, Any] = {
            k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None
        }
        if "url" in changes and changes["url"] != tool.url:
            await self._check_url(changes["url"])
        if "name" in changes and await self.webhooks.name_taken(
            principal.org_id, changes["name"], except_id=tool.id
        ):
            raise Conflict(f"Another webhook tool is already named {changes['name']!r}.")
        for field, value in changes.items():
            setattr(tool, field, value)
        await self.session.flush()
        await self.session.refresh(tool, ["updated_at"])
        return tool

    async def delete_webhook(self, principal: Principal, tool_id: str) -> None:
        tool = await self.get_webhook(principal, tool_id, for_update=True)
        await self.webhooks.delete(tool)
        await self.servers.forget_in_agents(principal.org_id, f"{WEBHOOK_PREFIX}{tool.id}")
        await self._audit(principal, "webhook_tool_deleted", tool.id, {"name": tool.name})

    # --- both ----------------------------------------------------------------------------------------------

    async def _audit(self, principal: Principal, action: str, target: str, details: dict[str, Any]) -> None:
        await record_audit(
            self.session,
            action=action,
            org_id=principal.org_id,
            actor_user_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            target=target,
            details=details,
        )

    async def _check_url(self, url: str) -> None:
        """An http(s) URL on a public address (or one the operator allows); plain http only for those."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidField("url", "must be an https URL with a host name")
        try:
            checked = await check_url(url, self.policy)
        except EgressRefused as exc:
            raise InvalidField(
                "url",
                f"{str(exc).removeprefix('refused: ')}; the operator can allow it with HUTCH_EGRESS_ALLOW",
            ) from None
        except EgressError:
            checked = None  # not resolvable now; every call checks again
        if parts.scheme == "http" and not (checked and checked.operator_allowed):
            raise InvalidField(
                "url",
                "must use https (plain http only reaches hosts the operator allows in HUTCH_EGRESS_ALLOW)",
            )
