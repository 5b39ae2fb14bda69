"""Real MCP servers (streamable HTTP and SSE) and a webhook endpoint on loopback, and a deployment whose
egress guard lets tools reach loopback (``HUTCH_EGRESS_ALLOW=127.0.0.1``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.resources import Resources
from hutch.settings import Settings
from tests.factories import Account, create_account
from tests.fakes.mcp import McpTestServer, WebhookServer, WebhookState


@pytest.fixture(scope="session")
def mcp_server() -> Iterator[McpTestServer]:
    server = McpTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sse_server() -> Iterator[McpTestServer]:
    server = McpTestServer("sse")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def webhook_server_running() -> Iterator[WebhookServer]:
    server = WebhookServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhook_server(webhook_server_running: WebhookServer) -> WebhookServer:
    webhook_server_running.state = WebhookState()
    return webhook_server_running


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings)


def configure(resources: Resources, **changes: Any) -> None:
    """The deployment as if started with these settings."""
    resources.settings = resources.settings.model_copy(update=changes)
    resources.llm.settings = resources.settings


@pytest.fixture
def local(resources: Resources) -> Resources:
    """Tools may reach loopback, and a call waits at most 2 seconds."""
    configure(resources, egress_allow=["127.0.0.1"], tool_timeout_seconds=2.0)
    return resources


async def connect(client: AsyncClient, account: Account, url: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/mcp-servers", json={"name": "Shop", "url": url, **extra}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
