"""MCP servers and webhook tools: admins and owners connect them, members see them (docs/tools.md)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hutch.core.bounds import Limit, Skip
from hutch.core.errors import Conflict, Forbidden, InvalidField, NotFound, Unauthorized, error_responses
from hutch.http.authz import OrgAdmin, Reader
from hutch.integrations.dependencies import ConnectedToolServiceDep
from hutch.integrations.models import McpServer, WebhookTool
from hutch.integrations.schemas import (
    McpServerCreate,
    McpServerList,
    McpServerOut,
    McpToolOut,
    WebhookToolCreate,
    WebhookToolCreated,
    WebhookToolList,
    WebhookToolOut,
    WebhookToolUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["tools"])


def server_out(server: McpServer) -> McpServerOut:
    return McpServerOut(
        id=server.id,
        name=server.name,
        url=server.url,
        transport=server.transport,
        status=server.status,
        error=server.error,
        header_names=list(server.header_names),
        tools=[McpToolOut.model_validate(tool) for tool in server.tools],
        tools_listed_at=server.tools_listed_at,
        created_at=server.created_at,
    )


def webhook_out(tool: WebhookTool) -> WebhookToolOut:
    return WebhookToolOut.model_validate(tool, from_attributes=True)


@router.post(
    "/mcp-servers",
    status_code=status.HTTP_201_CREATED,
    response_model=McpServerOut,
    responses=error_responses(Unauthorized, Forbidden, InvalidField),
)
async def create_mcp_server(
    body: McpServerCreate, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> McpServerOut:
    """Connect an MCP server (streamable HTTP, or SSE when the path ends in `/sse`) and list its tools.
    Header values (and `bearer_token`) are stored encrypted and never answered back. A server that does not
    answer is still created, with `status: "unreachable"` and the `error`; refresh it once it is up."""
    return server_out(await service.add_server(principal, body))


@router.get("/mcp-servers", response_model=McpServerList, responses=error_responses(Unauthorized, Forbidden))
async def list_mcp_servers(
    principal: Reader, service: ConnectedToolServiceDep, skip: Skip = 0, limit: Limit = 50
) -> McpServerList:
    """The org's MCP servers, oldest first, with the tools each listed."""
    servers, total = await service.page_servers(principal, skip, limit)
    return McpServerList(items=[server_out(s) for s in servers], total=total)


@router.get(
    "/mcp-servers/{server_id}", response_model=McpServerOut, responses=error_responses(Unauthorized, NotFound)
)
async def get_mcp_server(server_id: str, principal: Reader, service: ConnectedToolServiceDep) -> McpServerOut:
    """One MCP server."""
    return server_out(await service.get_server(principal, server_id))


@router.post(
    "/mcp-servers/{server_id}/refresh",
    response_model=McpServerOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def refresh_mcp_server(
    server_id: str, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> McpServerOut:
    """List the server's tools again; its `status` and `error` say how that went."""
    return server_out(await service.refresh_server(principal, server_id))


@router.delete(
    "/mcp-servers/{server_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_mcp_server(
    server_id: str, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> Response:
    """Disconnect the server; agents stop offering its tools."""
    await service.delete_server(principal, server_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-tools",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookToolCreated,
    responses=error_responses(Unauthorized, Forbidden, Conflict, InvalidField),
)
async def create_webhook_tool(
    body: WebhookToolCreate, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> WebhookToolCreated:
    """Define a tool served by the org's own HTTPS endpoint. Hutch POSTs the arguments as JSON with
    `X-Hutch-Signature: sha256=<hex HMAC-SHA256 of the body>`; the `signing_secret` is in this answer only."""
    tool, secret = await service.add_webhook(principal, body)
    return WebhookToolCreated(**webhook_out(tool).model_dump(), signing_secret=secret)


@router.get(
    "/webhook-tools", response_model=WebhookToolList, responses=error_responses(Unauthorized, Forbidden)
)
async def list_webhook_tools(
    principal: Reader, service: ConnectedToolServiceDep, skip: Skip = 0, limit: Limit = 50
) -> WebhookToolList:
    """The org's webhook tools, oldest first (never their secrets)."""
    tools, total = await service.page_webhooks(principal, skip, limit)
    return WebhookToolList(items=[webhook_out(t) for t in tools], total=total)


@router.get(
    "/webhook-tools/{tool_id}",
    response_model=WebhookToolOut,
    responses=error_responses(Unauthorized, NotFound),
)
async def get_webhook_tool(
    tool_id: str, principal: Reader, service: ConnectedToolServiceDep
) -> WebhookToolOut:
    """One webhook tool."""
    return webhook_out(await service.get_webhook(principal, tool_id))


@router.patch(
    "/webhook-tools/{tool_id}",
    response_model=WebhookToolOut,
    responses=error_responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidField),
)
async def update_webhook_tool(
    tool_id: str, body: WebhookToolUpdate, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> WebhookToolOut:
    """Change a webhook tool's name, description, parameters or URL; its secret stays."""
    return webhook_out(await service.update_webhook(principal, tool_id, body))


@router.delete(
    "/webhook-tools/{tool_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def delete_webhook_tool(
    tool_id: str, principal: OrgAdmin, service: ConnectedToolServiceDep
) -> Response:
    """Delete the tool; agents stop offering it."""
    await service.delete_webhook(principal, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
