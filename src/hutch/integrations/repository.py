"""Every query on MCP servers and webhook tools; each is filtered by the org that owns them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.integrations.models import McpServer, WebhookTool

_FORGET_IN_AGENTS = text(
    "UPDATE agents SET tools = ARRAY("
    "  SELECT t FROM unnest(tools) WITH ORDINALITY AS u(t, n) WHERE t NOT LIKE :pattern ORDER BY n"
    ") WHERE org_id = :org_id AND EXISTS (SELECT 1 FROM unnest(tools) AS u(t) WHERE t LIKE :pattern)"
)


class McpServerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, server: McpServer) -> None:
        self.session.add(server)

    async def get(self, org_id: str, server_id: str, *, for_update: bool = False) -> McpServer | None:
        statement = select(McpServer).where(McpServer.id == server_id, McpServer.org_id == org_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def page(self, org_id: str, skip: int, limit: int) -> tuple[list[McpServer], int]:
        where = McpServer.org_id == org_id
        total = int(await self.session.scalar(select(func.count()).select_from(McpServer).where(where)) or 0)
        rows = await self.session.scalars(
            select(McpServer)
            .where(where)
            .order_by(McpServer.created_at, McpServer.id)
            .offset(skip)
            .limit(limit)
        )
        return list(rows.all()), total

    async def many(self, org_id: str, ids: Collection[str]) -> list[McpServer]:
        if not ids:
            return []
        statement = select(McpServer).where(McpServer.org_id == org_id, McpServer.id.in_(list(ids)))
        return list((await self.session.scalars(statement)).all())

    async def of_org(self, org_id: str) -> list[McpServer]:
        statement = select(McpServer).where(McpServer.org_id == org_id).order_by(McpServer.created_at)
        return list((await self.session.scalars(statement)).all())

    async def delete(self, server: McpServer) -> None:
        await self.session.delete(server)

    async def forget_in_agents(self, org_id: str, pattern: str) -> None:
        """Take the tool names matching ``pattern`` (LIKE) out of the org's agents' tools."""
        await self.session.execute(_FORGET_IN_AGENTS, {"org_id": org_id, "pattern": pattern})


class WebhookToolRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, tool: WebhookTool) -> None:
        self.session.add(tool)

    async def get(self, org_id: str, tool_id: str, *, for_update: bool = False) -> WebhookTool | None:
        statement = select(WebhookTool).where(WebhookTool.id == tool_id, WebhookTool.org_id == org_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def name_taken(self, org_id: str, name: str, *, except_id: str | None = None) -> bool:
        statement = select(WebhookTool.id).where(WebhookTool.org_id == org_id, WebhookTool.name == name)
        if except_id is not None:
            statement = statement.where(WebhookTool.id != except_id)
        return (await self.session.scalar(statement.limit(1))) is not None

    async def page(self, org_id: str, skip: int, limit: int) -> tuple[list[WebhookTool], int]:
        where = WebhookTool.org_id == org_id
        total = int(
            await self.session.scalar(select(func.count()).select_from(WebhookTool).where(where)) or 0
        )
        rows = await self.session.scalars(
            select(WebhookTool)
            .where(where)
            .order_by(WebhookTool.created_at, WebhookTool.id)
            .offset(skip)
            .limit(limit)
        )
        return list(rows.all()), total

    async def many(self, org_id: str, ids: Collection[str]) -> list[WebhookTool]:
        if not ids:
            return []
        statement = select(WebhookTool).where(WebhookTool.org_id == org_id, WebhookTool.id.in_(list(ids)))
        return list((await self.session.scalars(statement)).all())

    async def of_org(self, org_id: str) -> list[WebhookTool]:
        statement = select(WebhookTool).where(WebhookTool.org_id == org_id).order_by(WebhookTool.created_at)
        return list((await self.session.scalars(statement)).all())

    async def delete(self, tool: WebhookTool) -> None:
        await self.session.delete(tool)
