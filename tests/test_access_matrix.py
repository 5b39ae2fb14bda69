"""Every route, every way in: no credentials, expired tokens, revoked keys, missing scopes, other orgs.

The routes come from the app itself, so a new route without an entry in ``ROUTES`` fails this test:
say who may call it, and the checks below prove nobody else gets in or sees another org's data.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import AsyncClient
from sqlalchemy import select
from starlette.routing import Mount

from hutch.accounts.models import OrgRole
from hutch.browser.models import Screenshot
from hutch.channels.models import Channel, ChannelLink, ChannelStatus, ChannelType, LinkStatus
from hutch.conversations.models import AttachmentKind, EndUser, Message, MessageAttachment
from hutch.conversations.repository import MemoryRepository
from hutch.core.ids import new_id
from hutch.core.security import create_access_token
from hutch.integrations.models import McpServer, McpServerStatus, McpTransport, WebhookTool
from hutch.settings import Settings
from tests.conftest import LiveDeployment, PostgresServer, live_deployment
from tests.factories import Account, create_account


class Guard(StrEnum):
    PUBLIC = "public"  # no credentials (the body or a token in it is the credential)
    SIGNED_IN = "signed_in"  # an access token, whatever the org
    MEMBER = "member"  # a signed-in member of the current org (roles checked by the route's own tests)
    READ = "read"  # a member or a key with this scope
    WRITE = "write"
    CHAT = "chat"
    PLATFORM_ADMIN = "platform_admin"
    WEB = "web"  # a dashboard page: a browser session of a member (tests/web/test_web_access.py)
    WEB_ADMIN = "web_admin"  # an admin console page: a browser session of a platform admin


@dataclass(frozen=True)
class Access:
    guard: Guard
    body: dict[str, Any] | None = None
    form: dict[str, str] | None = field(default=None)


INFRA = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): Access(Guard.PUBLIC),
    ("GET", "/readyz"): Access(Guard.PUBLIC),
    ("GET", "/metrics"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/signup"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/login"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/refresh"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/logout"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/verify-email"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/password-reset/request"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/password-reset"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/auth/verify-email/send"): Access(Guard.SIGNED_IN),
    ("GET", "/api/v1/users/me"): Access(Guard.SIGNED_IN),
    ("PATCH", "/api/v1/users/me"): Access(Guard.SIGNED_IN, {"name": "x"}),
    ("POST", "/api/v1/users/me/password"): Access(
        Guard.SIGNED_IN, {"current_password": "whatever-it-is", "new_password": "new-long-password"}
    ),
    ("POST", "/api/v1/orgs"): Access(Guard.SIGNED_IN, {"name": "Another"}),
    ("POST", "/api/v1/invitations/accept"): Access(Guard.SIGNED_IN, {"token": "not-a-real-token"}),
    ("GET", "/api/v1/org"): Access(Guard.READ),
    ("PATCH", "/api/v1/org"): Access(Guard.MEMBER, {"name": "Renamed"}),
    ("GET", "/api/v1/org/members"): Access(Guard.MEMBER),
    ("PATCH", "/api/v1/org/members/{user_id}"): Access(Guard.MEMBER, {"role": "member"}),
    ("DELETE", "/api/v1/org/members/{user_id}"): Access(Guard.MEMBER),
    ("POST", "/api/v1/org/invitations"): Access(Guard.MEMBER, {"email": "someone@example.com"}),
    ("GET", "/api/v1/org/invitations"): Access(Guard.MEMBER),
    ("DELETE", "/api/v1/org/invitations/{invitation_id}"): Access(Guard.MEMBER),
    ("POST", "/api/v1/api-keys"): Access(Guard.MEMBER, {"label": "matrix"}),
    ("GET", "/api/v1/api-keys"): Access(Guard.MEMBER),
    ("GET", "/api/v1/api-keys/current"): Access(Guard.READ),
    ("DELETE", "/api/v1/api-keys/{key_id}"): Access(Guard.MEMBER),
    ("PATCH", "/api/v1/api-keys/{key_id}"): Access(Guard.MEMBER, {"rate_limit_per_minute": 5}),
    ("GET", "/api/v1/admin/audit-log"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/orgs/{org_id}/suspend"): Access(Guard.PLATFORM_ADMIN, {"reason": "matrix"}),
    ("POST", "/api/v1/admin/orgs/{org_id}/reinstate"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/users/{user_id}/suspend"): Access(Guard.PLATFORM_ADMIN, {"reason": "matrix"}),
    ("POST", "/api/v1/admin/users/{user_id}/reinstate"): Access(Guard.PLATFORM_ADMIN),
    ("DELETE", "/api/v1/admin/orgs/{org_id}"): Access(Guard.PLATFORM_ADMIN),
    ("DELETE", "/api/v1/admin/users/{user_id}"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/deletions"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/deletions/{deletion_id}"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/deletions/{deletion_id}/retry"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/users/me/export"): Access(Guard.SIGNED_IN),
    ("GET", "/api/v1/users/me/exports"): Access(Guard.SIGNED_IN),
    ("GET", "/api/v1/users/me/exports/{export_id}"): Access(Guard.SIGNED_IN),
    ("GET", "/api/v1/users/me/exports/{export_id}/download"): Access(Guard.SIGNED_IN),
    ("DELETE", "/api/v1/users/me"): Access(Guard.SIGNED_IN),
    ("POST", "/api/v1/agents"): Access(Guard.WRITE, {"name": "Matrix"}),
    ("GET", "/api/v1/agents"): Access(Guard.READ),
    ("GET", "/api/v1/agents/{agent_id}"): Access(Guard.READ),
    ("PATCH", "/api/v1/agents/{agent_id}"): Access(Guard.WRITE, {"name": "Renamed"}),
    ("DELETE", "/api/v1/agents/{agent_id}"): Access(Guard.WRITE),
    ("PUT", "/api/v1/agents/{agent_id}/avatar"): Access(Guard.WRITE),
    ("GET", "/api/v1/agents/{agent_id}/avatar"): Access(Guard.READ),
    ("DELETE", "/api/v1/agents/{agent_id}/avatar"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/channels/telegram/auto"): Access(Guard.WRITE, {}),
    ("GET", "/api/v1/agents/{agent_id}/channels/telegram/auto"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/channels/telegram/auto/code"): Access(Guard.WRITE),
    ("POST", "/api/v1/admin/creator-accounts"): Access(
        Guard.PLATFORM_ADMIN,
        {"phone": "+15550001234", "api_id": 1, "api_hash": "0123456789abcdef", "session": "s" * 30},
    ),
    ("GET", "/api/v1/admin/creator-accounts"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/creator-accounts/{account_id}"): Access(Guard.PLATFORM_ADMIN),
    ("PATCH", "/api/v1/admin/creator-accounts/{account_id}"): Access(Guard.PLATFORM_ADMIN, {"priority": 1}),
    ("DELETE", "/api/v1/admin/creator-accounts/{account_id}"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/creator-accounts/{account_id}/check"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/agent-roles"): Access(Guard.READ),
    ("GET", "/api/v1/agent-tools"): Access(Guard.READ),
    ("GET", "/api/v1/models"): Access(Guard.READ),
    ("POST", "/api/v1/provider-keys"): Access(Guard.MEMBER, {"provider": "openai", "api_key": "sk-matrix"}),
    ("GET", "/api/v1/provider-keys"): Access(Guard.MEMBER),
    ("DELETE", "/api/v1/provider-keys/{provider_key_id}"): Access(Guard.MEMBER),
    ("POST", "/api/v1/agents/{agent_id}/chat"): Access(Guard.CHAT, {"message": "hello"}),
    ("GET", "/api/v1/agents/{agent_id}/conversations"): Access(Guard.READ),
    ("GET", "/api/v1/agents/{agent_id}/conversations/{conversation_id}/messages"): Access(Guard.READ),
    ("POST", "/api/v1/agents/{agent_id}/conversations/{conversation_id}/reset"): Access(Guard.CHAT),
    ("GET", "/api/v1/agents/{agent_id}/memories"): Access(Guard.READ),
    ("DELETE", "/api/v1/agents/{agent_id}/memories/{memory_id}"): Access(Guard.WRITE),
    ("GET", "/api/v1/conversations"): Access(Guard.READ),
    ("GET", "/api/v1/conversations/{conversation_id}"): Access(Guard.READ),
    ("GET", "/api/v1/conversations/{conversation_id}/attachments/{attachment_id}"): Access(Guard.READ),
    ("POST", "/api/v1/mcp-servers"): Access(Guard.MEMBER, {"name": "m", "url": "https://mcp.example/mcp"}),
    ("GET", "/api/v1/mcp-servers"): Access(Guard.READ),
    ("GET", "/api/v1/mcp-servers/{server_id}"): Access(Guard.READ),
    ("POST", "/api/v1/mcp-servers/{server_id}/refresh"): Access(Guard.MEMBER),
    ("DELETE", "/api/v1/mcp-servers/{server_id}"): Access(Guard.MEMBER),
    ("POST", "/api/v1/webhook-tools"): Access(
        Guard.MEMBER,
        {"name": "w", "description": "d", "parameters": {"type": "object"}, "url": "https://hooks.example/w"},
    ),
    ("GET", "/api/v1/webhook-tools"): Access(Guard.READ),
    ("GET", "/api/v1/webhook-tools/{tool_id}"): Access(Guard.READ),
    ("PATCH", "/api/v1/webhook-tools/{tool_id}"): Access(Guard.MEMBER, {"description": "x"}),
    ("DELETE", "/api/v1/webhook-tools/{tool_id}"): Access(Guard.MEMBER),
    ("GET", "/api/v1/conversations/{conversation_id}/events"): Access(Guard.READ),
    ("GET", "/api/v1/conversations/{conversation_id}/export"): Access(Guard.READ),
    ("POST", "/api/v1/conversations/{conversation_id}/takeover"): Access(Guard.MEMBER),
    ("POST", "/api/v1/conversations/{conversation_id}/reply"): Access(Guard.MEMBER, {"content": "hi"}),
    ("POST", "/api/v1/conversations/{conversation_id}/release"): Access(Guard.MEMBER),
    ("POST", "/api/v1/conversations/{conversation_id}/close"): Access(Guard.WRITE),
    ("POST", "/api/v1/conversations/{conversation_id}/reopen"): Access(Guard.WRITE),
    ("POST", "/api/v1/end-users/{end_user_id}/block"): Access(Guard.WRITE),
    ("DELETE", "/api/v1/end-users/{end_user_id}/block"): Access(Guard.WRITE),
    ("GET", "/api/v1/agents/{agent_id}/memories/end-users"): Access(Guard.READ),
    ("DELETE", "/api/v1/agents/{agent_id}/memories"): Access(Guard.WRITE),
    ("POST", "/v1/chat/completions"): Access(
        Guard.CHAT, {"model": "{agent_id}", "messages": [{"role": "user", "content": "hi"}]}
    ),
    ("GET", "/v1/models"): Access(Guard.READ),
    ("POST", "/v1/responses"): Access(Guard.CHAT, {"model": "{agent_id}", "input": "hi"}),
    ("GET", "/v1/responses/{response_id}"): Access(Guard.CHAT),
    ("DELETE", "/v1/responses/{response_id}"): Access(Guard.CHAT),
    ("POST", "/v1/messages"): Access(
        Guard.CHAT,
        {"model": "{agent_id}", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    ),
    ("GET", "/api/v1/billing/plans"): Access(Guard.PUBLIC),
    ("GET", "/api/v1/billing/packages"): Access(Guard.READ),
    ("GET", "/api/v1/billing/usage"): Access(Guard.READ),
    ("GET", "/api/v1/billing/balance"): Access(Guard.READ),
    ("GET", "/api/v1/billing/ledger"): Access(Guard.READ),
    ("GET", "/api/v1/billing/subscription"): Access(Guard.READ),
    ("POST", "/api/v1/billing/checkout"): Access(
        Guard.MEMBER,
        {"plan": "starter", "success_url": "https://a.example", "cancel_url": "https://a.example"},
    ),
    ("POST", "/api/v1/billing/purchase"): Access(Guard.MEMBER, {"package_id": "credits-10"}),
    ("POST", "/api/v1/billing/portal"): Access(Guard.MEMBER),
    ("POST", "/api/v1/billing/subscription/cancel"): Access(Guard.MEMBER),
    ("POST", "/api/v1/billing/subscription/change"): Access(Guard.MEMBER, {"plan": "pro"}),
    ("POST", "/webhooks/stripe"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/admin/orgs/{org_id}/grants"): Access(
        Guard.PLATFORM_ADMIN, {"credits_cents": 100, "reason": "matrix"}
    ),
    ("PUT", "/api/v1/admin/orgs/{org_id}/plan"): Access(Guard.PLATFORM_ADMIN, {"plan": "pro"}),
    ("GET", "/api/v1/admin/orgs/{org_id}/ledger"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/stats"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/users"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/orgs"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/orgs/{org_id}"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/users/{user_id}"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/agents"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/alerts"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/analytics/revenue"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/analytics/usage"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/admin/analytics/margin"): Access(Guard.PLATFORM_ADMIN),
    ("GET", "/api/v1/usage"): Access(Guard.READ),
    ("GET", "/api/v1/users/me/notifications"): Access(Guard.MEMBER),
    ("PUT", "/api/v1/users/me/notifications"): Access(Guard.MEMBER, {"email": False, "chat": True}),
    ("GET", "/api/v1/users/me/notifications/sent"): Access(Guard.MEMBER),
    ("POST", "/api/v1/admin/alerts/{alert_id}/acknowledge"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/agents/{agent_id}/documents"): Access(Guard.WRITE, {"title": "t", "content": "text"}),
    ("GET", "/api/v1/agents/{agent_id}/documents"): Access(Guard.READ),
    ("GET", "/api/v1/agents/{agent_id}/documents/{document_id}"): Access(Guard.READ),
    ("DELETE", "/api/v1/agents/{agent_id}/documents/{document_id}"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/knowledge/search"): Access(Guard.READ, {"query": "tea"}),
    ("POST", "/api/v1/agents/{agent_id}/channels/telegram"): Access(
        Guard.WRITE, {"bot_token": "123456:AAE_matrix_token_value_abcdef"}
    ),
    ("GET", "/api/v1/agents/{agent_id}/channels"): Access(Guard.READ),
    ("GET", "/api/v1/agents/{agent_id}/channels/usage"): Access(Guard.READ),
    ("POST", "/api/v1/agents/{agent_id}/channels/webchat"): Access(
        Guard.WRITE, {"allowed_origins": ["https://shop.example"]}
    ),
    ("PATCH", "/api/v1/agents/{agent_id}/channels/{channel_id}"): Access(
        Guard.WRITE, {"allowed_origins": ["https://shop.example"]}
    ),
    ("DELETE", "/api/v1/agents/{agent_id}/channels/{channel_id}"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/channels/telegram/managed"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/channels/{channel_id}/reconnect"): Access(Guard.WRITE),
    ("POST", "/webhooks/telegram/{channel_id}"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/users/me/channel"): Access(
        Guard.MEMBER, {"channel": "whatsapp", "phone_e164": "+15551234567"}
    ),
    ("GET", "/api/v1/users/me/channels"): Access(Guard.MEMBER),
    ("DELETE", "/api/v1/users/me/channels/{link_id}"): Access(Guard.MEMBER),
    ("POST", "/webhooks/twilio/whatsapp"): Access(Guard.PUBLIC),
    ("GET", "/api/v1/admin/runtime-hosts"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/runtime-hosts"): Access(
        Guard.PLATFORM_ADMIN,
        {"name": "matrix", "driver": "docker", "address": "tcp://h:2375", "max_runtimes": 1},
    ),
    ("POST", "/api/v1/admin/runtime-hosts/{host_id}/pause"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/admin/runtime-hosts/{host_id}/resume"): Access(Guard.PLATFORM_ADMIN),
    ("DELETE", "/api/v1/admin/runtime-hosts/{host_id}"): Access(Guard.PLATFORM_ADMIN),
    ("POST", "/api/v1/agents/{agent_id}/runtime"): Access(Guard.WRITE),
    ("GET", "/api/v1/agents/{agent_id}/runtime"): Access(Guard.READ),
    ("DELETE", "/api/v1/agents/{agent_id}/runtime"): Access(Guard.WRITE),
    ("POST", "/api/v1/agents/{agent_id}/runtime/restart"): Access(Guard.WRITE),
    ("GET", "/api/v1/agents/{agent_id}/runtime/logs"): Access(Guard.READ),
    ("POST", "/api/v1/agents/{agent_id}/tasks"): Access(Guard.WRITE, {"description": "Follow up the leads"}),
    ("GET", "/api/v1/agents/{agent_id}/tasks"): Access(Guard.READ),
    ("GET", "/api/v1/tasks/{task_id}"): Access(Guard.READ),
    ("PATCH", "/api/v1/tasks/{task_id}"): Access(Guard.WRITE, {"description": "Follow up other leads"}),
    ("POST", "/api/v1/tasks/{task_id}/cancel"): Access(Guard.WRITE),
    ("GET", "/api/v1/tasks/{task_id}/live"): Access(Guard.READ),
    ("GET", "/api/v1/screenshots/{screenshot_id}"): Access(Guard.READ),
    ("POST", "/api/v1/voice/token"): Access(Guard.CHAT, {"agent_id": "{agent_id}"}),
    ("GET", "/api/v1/voice/sessions"): Access(Guard.READ),
    ("POST", "/webhooks/livekit"): Access(Guard.PUBLIC),
    ("GET", "/widget.js"): Access(Guard.PUBLIC),
    ("GET", "/api/v1/widget/{token}"): Access(Guard.PUBLIC),
    ("GET", "/api/v1/widget/{token}/messages"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/widget/{token}/messages"): Access(Guard.PUBLIC),
    ("POST", "/api/v1/widget/{token}/reset"): Access(Guard.PUBLIC),
    # A file the visitor sent: found through the widget's token and the visitor's id, that visitor's only.
    ("GET", "/api/v1/widget/{token}/attachments/{attachment_id}"): Access(Guard.PUBLIC),
    ("GET", "/"): Access(Guard.PUBLIC),
    ("GET", "/pricing"): Access(Guard.PUBLIC),
    ("GET", "/login"): Access(Guard.PUBLIC),
    ("POST", "/login"): Access(Guard.PUBLIC),
    ("GET", "/signup"): Access(Guard.PUBLIC),
    ("POST", "/signup"): Access(Guard.PUBLIC),
    ("POST", "/logout"): Access(Guard.PUBLIC),
    ("GET", "/forgot-password"): Access(Guard.PUBLIC),
    ("GET", "/privacy"): Access(Guard.PUBLIC),
    ("GET", "/terms"): Access(Guard.PUBLIC),
    ("GET", "/pages/{slug}"): Access(Guard.PUBLIC),  # the brand's own pages
    # Single sign-on: the provider's answer (state, nonce, code) or the account's password is the credential.
    ("GET", "/auth/oidc/{provider}/login"): Access(Guard.PUBLIC),
    ("GET", "/auth/oidc/{provider}/callback"): Access(Guard.PUBLIC),
    ("POST", "/auth/oidc/link"): Access(Guard.PUBLIC),
    ("POST", "/forgot-password"): Access(Guard.PUBLIC),
    ("GET", "/app"): Access(Guard.WEB),
    ("GET", "/app/onboarding"): Access(Guard.WEB),
    ("POST", "/app/onboarding"): Access(Guard.WEB, form={"name": "Matrix"}),
    ("GET", "/app/agents"): Access(Guard.WEB),
    ("POST", "/app/agents"): Access(Guard.WEB, form={"name": "Matrix"}),
    ("GET", "/app/agents/{agent_id}"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/chat"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/chat"): Access(Guard.WEB, form={"message": "hi"}),
    ("POST", "/app/agents/{agent_id}/chat/reset"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/settings"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/settings"): Access(Guard.WEB, form={"name": "Renamed"}),
    ("POST", "/app/agents/{agent_id}/avatar"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/avatar.png"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/delete"): Access(Guard.WEB, form={"confirm": "x"}),
    ("GET", "/app/agents/{agent_id}/knowledge"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/knowledge"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/knowledge/{document_id}/delete"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/channels"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/channels/telegram"): Access(Guard.WEB, form={"bot_token": "1:x"}),
    ("POST", "/app/agents/{agent_id}/channels/telegram/auto"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/channels/telegram/auto/code"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/channels/telegram/managed"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/channels/telegram/managed/{request_id}"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/channels/{channel_id}/reconnect"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/channels/webchat"): Access(
        Guard.WEB, form={"origins": "https://a.example"}
    ),
    ("POST", "/app/agents/{agent_id}/channels/whatsapp"): Access(Guard.WEB, form={"phone": "+15550001111"}),
    ("POST", "/app/agents/{agent_id}/channels/{channel_id}/delete"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/runtime"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/runtime/{action}"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/tasks"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/tasks"): Access(Guard.WEB, form={"description": "x"}),
    ("POST", "/app/agents/{agent_id}/tasks/{task_id}/cancel"): Access(Guard.WEB),
    ("GET", "/app/tasks/{task_id}"): Access(Guard.WEB),
    ("GET", "/app/tasks/{task_id}/live"): Access(Guard.WEB),
    ("GET", "/app/screenshots/{screenshot_id}"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/memories"): Access(Guard.WEB),
    ("POST", "/app/agents/{agent_id}/memories/forget"): Access(Guard.WEB, form={"end_user": "user:b"}),
    ("POST", "/app/agents/{agent_id}/memories/{memory_id}/delete"): Access(Guard.WEB),
    ("GET", "/app/inbox"): Access(Guard.WEB),
    ("GET", "/app/agents/{agent_id}/inbox"): Access(Guard.WEB),
    ("GET", "/app/inbox/{conversation_id}"): Access(Guard.WEB),
    ("GET", "/app/inbox/{conversation_id}/events"): Access(Guard.WEB),
    ("GET", "/app/inbox/{conversation_id}/export"): Access(Guard.WEB),
    ("GET", "/app/inbox/{conversation_id}/attachments/{attachment_id}"): Access(Guard.WEB),
    ("GET", "/app/tools"): Access(Guard.WEB),
    ("POST", "/app/tools/mcp"): Access(Guard.WEB, form={"name": "m", "url": "https://mcp.example/mcp"}),
    ("POST", "/app/tools/mcp/{server_id}/refresh"): Access(Guard.WEB),
    ("POST", "/app/tools/mcp/{server_id}/delete"): Access(Guard.WEB),
    ("POST", "/app/tools/webhooks"): Access(Guard.WEB, form={"name": "w", "url": "https://hooks.example/w"}),
    ("POST", "/app/tools/webhooks/{tool_id}/delete"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/takeover"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/reply"): Access(Guard.WEB, form={"content": "hi"}),
    ("POST", "/app/inbox/{conversation_id}/release"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/close"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/reopen"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/block"): Access(Guard.WEB),
    ("POST", "/app/inbox/{conversation_id}/unblock"): Access(Guard.WEB),
    ("GET", "/app/api-keys"): Access(Guard.WEB),
    ("POST", "/app/api-keys"): Access(Guard.WEB, form={"label": "x"}),
    ("POST", "/app/api-keys/{key_id}/revoke"): Access(Guard.WEB),
    ("GET", "/app/api-keys/{key_id}"): Access(Guard.WEB),
    ("POST", "/app/api-keys/{key_id}"): Access(Guard.WEB, form={"label": "x", "rate": "5"}),
    ("POST", "/app/provider-keys"): Access(Guard.WEB, form={"provider": "openai", "api_key": "sk-x"}),
    ("POST", "/app/provider-keys/{key_id}/delete"): Access(Guard.WEB),
    ("GET", "/app/billing"): Access(Guard.WEB),
    ("POST", "/app/billing/checkout"): Access(Guard.WEB, form={"plan": "starter"}),
    ("POST", "/app/billing/change"): Access(Guard.WEB, form={"plan": "pro"}),
    ("POST", "/app/billing/buy"): Access(Guard.WEB, form={"package": "credits-10"}),
    ("POST", "/app/billing/portal"): Access(Guard.WEB),
    ("POST", "/app/billing/cancel"): Access(Guard.WEB),
    ("GET", "/app/usage"): Access(Guard.WEB),
    ("GET", "/app/team"): Access(Guard.WEB),
    ("POST", "/app/team/language"): Access(Guard.WEB, form={"language": "es"}),
    ("POST", "/app/team/sso"): Access(Guard.WEB, form={"provider": ""}),
    ("POST", "/app/team/invitations"): Access(Guard.WEB, form={"email": "x@example.com"}),
    ("POST", "/app/team/invitations/{invitation_id}/revoke"): Access(Guard.WEB),
    ("POST", "/app/team/members/{user_id}/role"): Access(Guard.WEB, form={"role": "member"}),
    ("POST", "/app/team/members/{user_id}/remove"): Access(Guard.WEB),
    ("GET", "/app/manager"): Access(Guard.WEB),
    ("POST", "/app/org"): Access(Guard.WEB, form={"org_id": "org_missing"}),
    ("GET", "/app/settings/chats"): Access(Guard.WEB),
    ("POST", "/app/settings/chats/telegram"): Access(Guard.WEB),
    ("POST", "/app/settings/chats/whatsapp"): Access(Guard.WEB, form={"phone": "+15550001111"}),
    ("POST", "/app/settings/chats/{link_id}/remove"): Access(Guard.WEB),
    ("GET", "/app/settings/notifications"): Access(Guard.WEB),
    ("POST", "/app/settings/notifications"): Access(Guard.WEB, form={"email": "on"}),
    ("POST", "/app/manager"): Access(Guard.WEB),
    ("GET", "/admin"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/users"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/orgs"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/agents"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/alerts"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/alerts/{alert_id}/acknowledge"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/creator-accounts"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/creator-accounts/{account_id}/status"): Access(
        Guard.WEB_ADMIN, form={"status": "active"}
    ),
    ("GET", "/admin/runtime-hosts"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/runtime-hosts/new"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/runtime-hosts"): Access(
        Guard.WEB_ADMIN, form={"name": "h", "driver": "docker", "address": "tcp://h", "max_runtimes": "1"}
    ),
    ("GET", "/admin/runtime-hosts/{host_id}/{action}"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/runtime-hosts/{host_id}/{action}"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/creator-accounts/new"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/creator-accounts"): Access(Guard.WEB_ADMIN, form={"phone": "+15550001234"}),
    ("GET", "/admin/creator-accounts/{account_id}/status"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/creator-accounts/{account_id}/remove"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/creator-accounts/{account_id}/remove"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/orgs/{org_id}"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/orgs/{org_id}/suspend"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/orgs/{org_id}/suspend"): Access(Guard.WEB_ADMIN, form={"reason": "x"}),
    ("GET", "/admin/orgs/{org_id}/reinstate"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/orgs/{org_id}/reinstate"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/orgs/{org_id}/plan"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/orgs/{org_id}/plan"): Access(Guard.WEB_ADMIN, form={"plan": "pro"}),
    ("GET", "/admin/orgs/{org_id}/grant"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/orgs/{org_id}/grant"): Access(Guard.WEB_ADMIN, form={"credits": "1", "reason": "x"}),
    ("GET", "/admin/orgs/{org_id}/delete"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/orgs/{org_id}/delete"): Access(Guard.WEB_ADMIN, form={"confirm": "x"}),
    ("GET", "/admin/users/{user_id}"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/users/{user_id}/suspend"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/users/{user_id}/suspend"): Access(Guard.WEB_ADMIN, form={"reason": "x"}),
    ("GET", "/admin/users/{user_id}/reinstate"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/users/{user_id}/reinstate"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/users/{user_id}/delete"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/users/{user_id}/delete"): Access(Guard.WEB_ADMIN, form={"confirm": "x"}),
    ("GET", "/admin/deletions"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/deletions/{deletion_id}"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/deletions/{deletion_id}/retry"): Access(Guard.WEB_ADMIN),
    ("POST", "/admin/deletions/{deletion_id}/retry"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/audit-log"): Access(Guard.WEB_ADMIN),
    ("GET", "/admin/margins"): Access(Guard.WEB_ADMIN),
    ("GET", "/app/account"): Access(Guard.WEB),
    ("POST", "/app/account/language"): Access(Guard.WEB, form={"language": "es"}),
    ("GET", "/app/account/sso/{provider}/link"): Access(Guard.WEB),
    ("POST", "/app/account/sso/{provider}/unlink"): Access(Guard.WEB),
    ("POST", "/app/account/export"): Access(Guard.WEB),
    ("GET", "/app/account/exports/{export_id}/download"): Access(Guard.WEB),
    ("GET", "/app/account/delete"): Access(Guard.WEB),
    ("POST", "/app/account/delete"): Access(Guard.WEB, form={"confirm": "x"}),
    ("GET", "/verify-email"): Access(Guard.PUBLIC),
    ("GET", "/reset-password"): Access(Guard.PUBLIC),
    ("POST", "/reset-password"): Access(Guard.PUBLIC),
    ("GET", "/invitations/accept"): Access(Guard.PUBLIC),
    ("POST", "/invitations/accept"): Access(Guard.PUBLIC),
}

SCOPED = {Guard.READ, Guard.WRITE, Guard.CHAT}
PARAM = re.compile(r"\{(\w+)\}")


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
        elif getattr(route, "path", None) not in INFRA and not isinstance(route, Mount):
            raise AssertionError(f"unexpected route type {route!r}")
    return found


def test_every_route_has_an_entry(app: FastAPI) -> None:
    served = set(app_routes(app))
    missing = sorted(served - ROUTES.keys())
    stale = sorted(ROUTES.keys() - served)
    assert not missing, f"routes without an access entry: {missing}"
    assert not stale, f"entries for routes that no longer exist: {stale}"


@dataclass
class World:
    """Org A (the caller) and org B (the neighbour whose data must never show)."""

    a: Account
    b: Account
    b_member: Account
    a_keys: dict[str, str]  # "all", "read", "write", "chat", "revoked"
    b_ids: dict[str, str]  # path parameter -> one of B's resources
    secrets_of_b: list[str]
    expired_token: str


@pytest.fixture(scope="module")
async def deployment(
    postgres: PostgresServer, migrated_template: str, settings: Settings
) -> AsyncIterator[LiveDeployment]:
    """One deployment for the whole matrix: every call is refused, so no case changes what the next sees
    (a case whose call went through fails, whatever it changed)."""
    async with live_deployment(postgres, migrated_template, settings) as built:
        yield built


@pytest.fixture
def client(deployment: LiveDeployment) -> AsyncClient:
    return deployment.client


@pytest.fixture(scope="module")
async def world(deployment: LiveDeployment, settings: Settings) -> World:
    client, session = deployment.client, deployment.session
    a = await create_account(session, settings, org_name="Org A")
    b = await create_account(session, settings, org_name="Neighbour B", email="owner-b@example.com")
    b_member = await create_account(
        session, settings, org=b.org, role=OrgRole.MEMBER, email="member-b@example.com"
    )

    async def key(owner: Account, **fields: Any) -> dict[str, str]:
        response = await client.post("/api/v1/api-keys", json={"label": "m", **fields}, headers=owner.headers)
        assert response.status_code == 201
        body: dict[str, str] = response.json()
        return body

    a_keys = {"all": (await key(a))["key"]}
    for scope in ("read", "write", "chat"):
        a_keys[scope] = (await key(a, scopes=[scope]))["key"]
    revoked = await key(a)
    await client.delete(f"/api/v1/api-keys/{revoked['id']}", headers=a.headers)
    a_keys["revoked"] = revoked["key"]

    b_key = await key(b)
    invitation = await client.post(
        "/api/v1/org/invitations", json={"email": "invitee-b@example.com"}, headers=b.headers
    )
    b_agent = (await client.post("/api/v1/agents", json={"name": "B's agent"}, headers=b.headers)).json()
    b_chat = await client.post(
        f"/api/v1/agents/{b_agent['id']}/chat", json={"message": "hi"}, headers=b.headers
    )
    b_response = await client.post(
        "/v1/responses", json={"model": b_agent["id"], "input": "hi"}, headers={"X-API-Key": b_key["key"]}
    )
    b_provider_key = await client.post(
        "/api/v1/provider-keys", json={"provider": "openai", "api_key": "sk-b-own-key"}, headers=b.headers
    )
    b_memory = await MemoryRepository(session).add_fact(b.org.id, b_agent["id"], "user:b", "B likes tea")
    await session.commit()  # really committed: the requests below lock the org row it points to
    b_document = await client.post(
        f"/api/v1/agents/{b_agent['id']}/documents",
        json={"title": "B's secret handbook", "content": "B's secret recipe for tea"},
        headers=b.headers,
    )
    b_channel = Channel(
        id=new_id("chn"),
        org_id=b.org.id,
        agent_id=b_agent["id"],
        type=ChannelType.TELEGRAM,
        status=ChannelStatus.ACTIVE,
        external_id="4242",
        username="b_secret_bot",
        token_encrypted="x",
        webhook_secret_hash="0" * 64,
    )
    b_task = await client.post(
        f"/api/v1/agents/{b_agent['id']}/tasks",
        json={"description": "B's secret task", "schedule": "0 9 * * *"},
        headers=b.headers,
    )
    b_link = ChannelLink(
        id=new_id("lnk"),
        org_id=b.org.id,
        user_id=b.user.id,
        agent_id=b_agent["id"],
        channel="whatsapp",
        address="+15550009999",
        status=LinkStatus.ACTIVE,
        code_hash="1" * 64,
        code_expires_at=datetime.now(UTC),
    )
    b_message = await session.scalar(
        select(Message.id).where(Message.conversation_id == b_chat.json()["conversation_id"]).limit(1)
    )
    b_attachment = MessageAttachment(
        id=new_id("att"),
        org_id=b.org.id,
        message_id=b_message,
        conversation_id=b_chat.json()["conversation_id"],
        kind=AttachmentKind.DOCUMENT,
        content_type="text/plain",
        filename="b-secret.txt",
        size_bytes=5,
        data=b"B's s",
    )
    b_server = McpServer(
        id=new_id("mcp"),
        org_id=b.org.id,
        name="B's secret server",
        url="https://mcp.b.example/mcp",
        transport=McpTransport.STREAMABLE_HTTP,
        status=McpServerStatus.CONNECTED,
    )
    b_tool = WebhookTool(
        id=new_id("wht"),
        org_id=b.org.id,
        name="b_secret_tool",
        description="B's",
        parameters={"type": "object"},
        url="https://hooks.b.example/t",
        signing_secret_encrypted="x",
    )
    b_screenshot = Screenshot(
        id=new_id("shot"),
        org_id=b.org.id,
        agent_id=b_agent["id"],
        task_id=b_task.json()["id"],
        step=1,
        action="open",
        page_url="https://b.example/secret",
        storage_key=f"{b.org.id}/b-secret.jpg",
        content_type="image/jpeg",
        size_bytes=3,
    )
    session.add_all([b_channel, b_link, b_attachment, b_server, b_tool, b_screenshot])
    await session.commit()
    b_ids = {
        "key_id": b_key["id"],
        "user_id": b_member.user.id,
        "invitation_id": invitation.json()["id"],
        "agent_id": b_agent["id"],
        "conversation_id": b_chat.json()["conversation_id"],
        "memory_id": b_memory.id,
        "provider_key_id": b_provider_key.json()["id"],
        "document_id": b_document.json()["id"],
        "channel_id": b_channel.id,
        "link_id": b_link.id,
        "task_id": b_task.json()["id"],
        "response_id": b_response.json()["id"],
        "attachment_id": b_attachment.id,
        "screenshot_id": b_screenshot.id,
        "server_id": b_server.id,
        "tool_id": b_tool.id,
        "end_user_id": await session.scalar(select(EndUser.id).where(EndUser.org_id == b.org.id)),
    }
    expired = create_access_token(settings.require_secret_key(), a.user.id, timedelta(seconds=-1))
    return World(
        a=a,
        b=b,
        b_member=b_member,
        a_keys=a_keys,
        b_ids=b_ids,
        secrets_of_b=[
            b.org.id,
            "Neighbour B",
            "owner-b@example.com",
            "member-b@example.com",
            "B likes tea",
            "B's secret handbook",
            "b_secret_bot",
            "sk-b-own-key",
            "+15550009999",
            "B's secret task",
            *b_ids.values(),
        ],
        expired_token=expired,
    )


async def call(
    client: AsyncClient, method: str, path: str, access: Access, ids: dict[str, str], headers: dict[str, str]
) -> tuple[int, str]:
    def fill(text: str) -> str:
        return PARAM.sub(lambda m: ids.get(m.group(1), f"missing_{m.group(1)}"), text)

    body = json.loads(fill(json.dumps(access.body))) if access.body is not None else None
    response = await client.request(method, fill(path), json=body, data=access.form, headers=headers)
    return response.status_code, response.text


def names_resources(path: str, access: Access) -> bool:
    return bool(PARAM.search(path) or PARAM.search(json.dumps(access.body)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    sorted(k for k, v in ROUTES.items() if v.guard not in (Guard.PUBLIC, Guard.WEB, Guard.WEB_ADMIN)),
)
async def test_nobody_else_gets_in(client: AsyncClient, world: World, method: str, path: str) -> None:
    access = ROUTES[(method, path)]
    own_ids = {"key_id": "key_x", "user_id": world.a.user.id, "invitation_id": "inv_x", "agent_id": "agt_x"}
    seen: list[tuple[str, dict[str, str]]] = []

    async def expect(status: int, headers: dict[str, str], ids: dict[str, str] = own_ids) -> None:
        got, text = await call(client, method, path, access, ids, headers)
        assert got == status, f"{method} {path} with {headers}: expected {status}, got {got}: {text}"
        seen.append((text, {**headers, **ids}))

    await expect(401, {})
    await expect(401, bearer(world.expired_token))
    await expect(401, bearer("not-a-token"))
    await expect(401, {"X-API-Key": world.a_keys["revoked"]})
    await expect(401, {"X-API-Key": "hk_" + "0" * 43})
    if access.guard in SCOPED:
        for scope in ("read", "write", "chat"):
            if scope != access.guard.value:
                await expect(403, {"X-API-Key": world.a_keys[scope]})
    if access.guard in (Guard.SIGNED_IN, Guard.MEMBER):
        await expect(403, {"X-API-Key": world.a_keys["all"]})  # keys act for an org, not a person
    if access.guard == Guard.PLATFORM_ADMIN:
        await expect(403, world.a.headers)
        await expect(403, {"X-API-Key": world.a_keys["all"]})
    else:
        # Naming an org you are not in is a 404, for people and keys alike.
        await expect(404, {**world.a.headers, "X-Org-Id": world.b.org.id})
        if access.guard in SCOPED:
            await expect(404, {"X-API-Key": world.a_keys["all"], "X-Org-Id": world.b.org.id})
    if names_resources(path, access) and access.guard != Guard.PLATFORM_ADMIN:
        # Org B's ids from org A's owner: not found, as if they did not exist.
        await expect(404, world.a.headers, world.b_ids)
    for text, sent in seen:
        for secret in world.secrets_of_b:
            if secret not in sent.values():  # quoting back what the caller sent is not a leak
                assert secret not in text, f"{method} {path} leaked {secret!r}: {text}"
