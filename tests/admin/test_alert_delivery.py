"""New alerts reach the admins: email, the admin Telegram chat and a signed webhook (local servers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hutch.admin import webhook_watch
from hutch.alerts.models import Alert, Severity
from hutch.alerts.service import SIGNATURE_HEADER, raise_alert
from hutch.db.engine import Database, UnitOfWork
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, build_test_resources
from tests.factories import create_account
from tests.fakes.server import BackgroundServer
from tests.fakes.smtp import SmtpServer
from tests.fakes.telegram import FakeTelegramServer

SECRET = "whsec-admin-alerts-0123456789"
BOT = "777000111:AAE_operator_bot_for_admin_alerts"


class AlertReceiver(BackgroundServer):
    """An operator's endpoint: it checks the signature as the docs say and keeps what it accepted."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        super().__init__(Starlette(routes=[Route("/alerts", self._receive, methods=["POST"])]))

    async def _receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        parts = dict(item.split("=", 1) for item in request.headers.get(SIGNATURE_HEADER, "").split(","))
        expected = hmac.new(SECRET.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts.get("t", "0"))) < 300
        if not (fresh and hmac.compare_digest(expected, parts.get("v1", ""))):
            self.refused += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.accepted.append(json.loads(body))
        return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def receiver() -> Iterator[AlertReceiver]:
    server = AlertReceiver()
    server.start()
    yield server
    server.stop()


async def test_a_new_alert_reaches_every_admin_channel_once(
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
    mailbox: SmtpServer,
    telegram_server: FakeTelegramServer,
    receiver: AlertReceiver,
) -> None:
    telegram_server.reset()
    telegram_server.add_bot(BOT, "operator_bot")
    telegram_server.add_chat(-100123, type="group", title="Hutch admins")
    configured = settings.model_copy(
        update={
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_token": SecretStr(BOT),
            "admin_telegram_chat_id": "-100123",
            "admin_webhook_url": f"{receiver.base_url}/alerts",
            "admin_webhook_secret": SecretStr(SECRET),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    jobs = resources.jobs
    assert isinstance(jobs, RecordingJobQueue)
    await create_account(session, settings, email="root@example.com", platform_admin=True)

    uow = UnitOfWork(session, jobs)
    for _ in range(3):  # the same situation three times: one delivery
        await raise_alert(
            uow, "runtime_capacity", Severity.CRITICAL, "No runtime host has room", "Add a host."
        )
    await uow.checkpoint()
    results = await jobs.run_pending()
    assert results[0] == ["email:root@example.com", "telegram", "webhook"]

    [email] = mailbox.wait_for("root@example.com")
    assert "No runtime host has room" in email.subject
    assert telegram_server.sent_texts(-100123, BOT) == ["[CRITICAL] No runtime host has room\nAdd a host."]
    [posted] = receiver.accepted
    assert posted["kind"] == "runtime_capacity" and posted["severity"] == "critical"
    assert receiver.refused == 0


async def test_a_spike_of_refused_webhooks_raises_one_alert(
    client: AsyncClient, session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_watch, "SPIKE", 2)
    source = "telegram"
    for _ in range(4):
        refused = await client.post(
            f"/webhooks/{source}/chn_{secrets.token_hex(4)}",
            json={"update_id": 1},
            headers={"X-Telegram-Bot-Api-Secret-Token": "forged"},
        )
        assert refused.status_code == 403
    open_alerts = (
        await session.scalars(
            select(Alert).where(Alert.kind == "webhook_refusals", Alert.acknowledged_at.is_(None))
        )
    ).all()
    assert len(open_alerts) == 1 and open_alerts[0].occurrences >= 1
    assert "telegram" in open_alerts[0].subject
