"""Deleting an organisation or a user for good: exported first, bots' webhooks removed (Telegram), the
Stripe customer deleted (localstripe), everything else gone; a deletion that failed halfway is retried from
where it stopped. Self-service: export my data (a ZIP for me alone, until it expires), delete my account."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org, User
from hutch.app import create_app
from hutch.billing.models import BillingAccount
from hutch.core.ids import new_id
from hutch.db.engine import Database
from hutch.deletion.deletions import StepFailed
from hutch.deletion.models import DataExport
from hutch.integrations.models import WebhookTool
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.localstripe import TEST_API_KEY, LocalStripe
from tests.fakes.telegram import FakeTelegramServer
from tests.log_scan import leaks_in

BOT_TOKEN = "737373737:AAE_deletion_bot_token_kept_secret"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    server = LocalStripe()
    server.start()
    yield server
    server.stop()


@dataclass
class World:
    client: AsyncClient
    resources: Resources
    session: AsyncSession
    admin: Account
    customer: Account
    telegram: FakeTelegramServer
    stripe: LocalStripe

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    async def furnish(self) -> dict[str, Any]:
        """An agent, a document, a conversation, a Telegram bot, an API key, credits, a Stripe customer."""
        h = self.customer.headers
        agent = (
            await self.client.post("/api/v1/agents", json={"name": "Kettle", "model": "demo/echo"}, headers=h)
        ).json()
        doc = await self.client.post(
            f"/api/v1/agents/{agent['id']}/documents",
            json={"title": "Warranty", "content": "The warranty lasts two years on every kettle."},
            headers=h,
        )
        assert doc.status_code == 201, doc.text
        await self.jobs.run_pending()
        chat = await self.client.post(
            f"/api/v1/agents/{agent['id']}/chat", json={"message": "My kettle is broken"}, headers=h
        )
        assert chat.status_code == 200, chat.text
        bot = await self.client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": BOT_TOKEN}, headers=h
        )
        assert bot.status_code == 201, bot.text
        assert self.telegram.webhook(BOT_TOKEN) is not None
        key = await self.client.post("/api/v1/api-keys", json={"label": "shop"}, headers=h)
        grant = await self.client.post(
            f"/api/v1/admin/orgs/{self.customer.org.id}/grants",
            json={"credits_cents": 500, "reason": "welcome"},
            headers=self.admin.headers,
        )
        assert grant.status_code == 201, grant.text
        assert self.resources.stripe is not None
        customer_id = await self.resources.stripe.create_customer(self.customer.org.id, "Customer", None)
        self.session.add(BillingAccount(org_id=self.customer.org.id, stripe_customer_id=customer_id))
        await self.session.commit()
        await self.jobs.run_pending()
        return {"agent": agent, "key": key.json()["key"], "customer_id": customer_id}

    async def rows_of(self, org_id: str) -> int:
        """Rows left anywhere that carry this org's id."""
        tables = (
            await self.session.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'org_id' "
                    "AND table_schema = 'public' AND table_name NOT IN ('audit_log', 'revenue_events')"
                )
            )
        ).scalars()
        total = 0
        for table in tables:
            total += int(
                (
                    await self.session.execute(
                        text(f'SELECT count(*) FROM "{table}" WHERE org_id = :o'), {"o": org_id}
                    )
                ).scalar_one()
            )
        return total


@pytest.fixture
async def world(
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
    telegram_server: FakeTelegramServer,
    localstripe: LocalStripe,
    tmp_path: Any,
) -> AsyncIterator[World]:
    telegram_server.reset()
    telegram_server.add_bot(BOT_TOKEN, "kettle_bot")
    localstripe.reset()
    configured = settings.model_copy(
        update={
            "telegram_api_base": telegram_server.base_url,
            "stripe_api_base": localstripe.base_url,
            "stripe_secret_key": SecretStr(TEST_API_KEY),
            "data_dir": tmp_path,
        }
    )
    resources = build_test_resources(configured, database, database_url)
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            admin = await create_account(session, settings, platform_admin=True, org_name="Operator")
            customer = await create_account(session, settings, org_name="Customer")
            yield World(client, resources, session, admin, customer, telegram_server, localstripe)
    finally:
        await resources.llm.close()
        if resources.stripe is not None:
            await resources.stripe.close()


def unzip(body: bytes) -> dict[str, Any]:
    import json

    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: json.loads(archive.read(name)) for name in archive.namelist()}


async def test_deleting_an_org_exports_it_then_removes_everything(world: World) -> None:
    w = world
    made = await w.furnish()
    org_id = w.customer.org.id
    w.session.add(
        WebhookTool(
            id=new_id("wht"),
            org_id=org_id,
            name="order_status",
            description="Where an order is.",
            parameters={"type": "object"},
            url="https://shop.example/hutch",
            signing_secret_encrypted="sealed-signing-secret",
        )
    )
    await w.session.commit()

    asked = await w.client.delete(f"/api/v1/admin/orgs/{org_id}", headers=w.admin.headers)
    assert asked.status_code == 202, asked.text
    deletion = asked.json()
    assert deletion["status"] == "pending" and deletion["subject_label"] == "Customer"
    again = await w.client.delete(f"/api/v1/admin/orgs/{org_id}", headers=w.admin.headers)
    assert again.json()["id"] == deletion["id"]  # asking twice runs it once
    assert await w.jobs.run_pending() == ["done"]

    done = (await w.client.get(f"/api/v1/admin/deletions/{deletion['id']}", headers=w.admin.headers)).json()
    assert done["status"] == "done" and done["error"] is None
    report = done["report"]
    assert report[f"telegram:{org_id}"] == "1 bot webhook(s) removed"
    assert report[f"stripe:{org_id}"] == f"customer {made['customer_id']} deleted"
    assert report[f"data:{org_id}"] == "organisation and its data deleted"
    assert report["users"] == "1 user(s) deleted"

    assert await w.session.get(Org, org_id, populate_existing=True) is None
    assert await w.session.get(User, w.customer.user.id, populate_existing=True) is None
    assert await w.rows_of(org_id) == 0
    assert w.telegram.webhook(BOT_TOKEN) is None
    with pytest.raises(stripe.InvalidRequestError):
        w.stripe.client().v1.customers.retrieve(made["customer_id"])
    assert (await w.client.get("/api/v1/agents", headers={"X-API-Key": made["key"]})).status_code == 401
    listed = (await w.client.get("/api/v1/admin/deletions", headers=w.admin.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == deletion["id"]

    # The export, kept for the admin who asked, holds the data and no secret.
    zipped = await w.client.get(
        f"/api/v1/users/me/exports/{done['export_id']}/download", headers=w.admin.headers
    )
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    files = unzip(zipped.content)
    assert set(files) == {
        "account.json",
        "agents.json",
        "documents.json",
        "conversations.json",
        "ledger.json",
    }
    assert files["agents.json"]["agents"][0]["name"] == "Kettle"
    [tool] = files["agents.json"]["connected_tools"]
    assert tool["name"] == "order_status" and tool["url"] == "https://shop.example/hutch"
    assert "sealed-signing-secret" not in zipped.content.decode("latin-1")
    assert "two years" in files["documents.json"]["documents"][0]["text"]
    messages = files["conversations.json"]["conversations"][0]["messages"]
    assert messages[0]["content"] == "My kettle is broken"
    assert files["ledger.json"]["entries"][0]["amount"] == 500
    for secret in (BOT_TOKEN, made["key"], w.customer.user.password_hash, "token_encrypted", "password_hash"):
        assert secret not in zipped.content.decode("latin-1")
    # And nothing shaped like a secret, by the same scan every test's log goes through.
    for name, content in files.items():
        assert not leaks_in(json.dumps(content)), name


async def test_a_deletion_that_failed_halfway_is_retried_from_where_it_stopped(world: World) -> None:
    w = world
    made = await w.furnish()
    org_id = w.customer.org.id
    w.telegram.fail("deleteWebhook", 500, "Internal Server Error", times=1)
    asked = await w.client.delete(f"/api/v1/admin/orgs/{org_id}", headers=w.admin.headers)
    with pytest.raises(StepFailed):
        await w.jobs.run_pending()
    failed = (
        await w.client.get(f"/api/v1/admin/deletions/{asked.json()['id']}", headers=w.admin.headers)
    ).json()
    assert failed["status"] == "failed" and failed["error"].startswith(f"telegram:{org_id}")
    assert BOT_TOKEN not in failed["error"]
    assert failed["report"]["export"].startswith("ready")  # done before the failure, kept
    assert await w.session.get(Org, org_id, populate_existing=True) is not None  # nothing removed yet
    exports_before = await w.session.scalar(select(func.count()).select_from(DataExport))

    retried = await w.client.post(f"/api/v1/admin/deletions/{failed['id']}/retry", headers=w.admin.headers)
    assert retried.status_code == 202
    assert await w.jobs.run_pending() == ["done"]
    done = (await w.client.get(f"/api/v1/admin/deletions/{failed['id']}", headers=w.admin.headers)).json()
    assert done["status"] == "done" and done["attempts"] == 2 and done["export_id"] == failed["export_id"]
    assert await w.session.scalar(select(func.count()).select_from(DataExport)) == exports_before
    assert w.telegram.webhook(BOT_TOKEN) is None
    with pytest.raises(stripe.InvalidRequestError):
        w.stripe.client().v1.customers.retrieve(made["customer_id"])
    again = await w.client.post(f"/api/v1/admin/deletions/{failed['id']}/retry", headers=w.admin.headers)
    assert again.status_code == 409  # a finished deletion is not run again


async def test_bad_deletions_are_refused_and_change_nothing(world: World) -> None:
    w = world
    assert (
        await w.client.delete("/api/v1/admin/orgs/org_missing", headers=w.admin.headers)
    ).status_code == 404
    assert (
        await w.client.delete("/api/v1/admin/users/usr_missing", headers=w.admin.headers)
    ).status_code == 404
    own = await w.client.delete(f"/api/v1/admin/users/{w.admin.user.id}", headers=w.admin.headers)
    assert own.status_code == 409
    by_customer = await w.client.delete(f"/api/v1/admin/orgs/{w.admin.org.id}", headers=w.customer.headers)
    assert by_customer.status_code == 403
    assert (
        await w.client.get("/api/v1/admin/deletions/del_missing", headers=w.admin.headers)
    ).status_code == 404
    last_admin = await w.client.delete("/api/v1/users/me", headers=w.admin.headers)
    assert last_admin.status_code == 409
    assert w.jobs.deferred == []
    assert await w.session.get(Org, w.customer.org.id, populate_existing=True) is not None


async def test_i_export_my_data_and_only_i_can_download_it_until_it_expires(world: World) -> None:
    w = world
    await w.furnish()
    asked = await w.client.post("/api/v1/users/me/export", headers=w.customer.headers)
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    export_id = asked.json()["id"]
    pending = await w.client.get(f"/api/v1/users/me/exports/{export_id}", headers=w.customer.headers)
    assert pending.json()["status"] == "pending" and pending.json()["download_url"] is None
    assert (
        await w.client.get(f"/api/v1/users/me/exports/{export_id}/download", headers=w.customer.headers)
    ).status_code == 409
    assert await w.jobs.run_pending() == ["ready"]

    ready = (await w.client.get(f"/api/v1/users/me/exports/{export_id}", headers=w.customer.headers)).json()
    assert ready["status"] == "ready" and ready["download_url"].endswith(f"/exports/{export_id}/download")
    mine = await w.client.get(ready["download_url"], headers=w.customer.headers)
    assert mine.status_code == 200
    files = unzip(mine.content)
    assert files["account.json"]["user"]["email"] == w.customer.user.email
    assert "password_hash" not in files["account.json"]["user"]
    assert not [name for name, content in files.items() if leaks_in(json.dumps(content))]
    assert BOT_TOKEN not in mine.content.decode("latin-1")
    assert (await w.client.get(ready["download_url"], headers=w.admin.headers)).status_code == 404
    assert (
        await w.client.get(f"/api/v1/users/me/exports/{export_id}", headers=w.admin.headers)
    ).status_code == 404
    assert (await w.client.get(ready["download_url"])).status_code == 401

    await w.session.execute(
        update(DataExport)
        .where(DataExport.id == export_id)
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    await w.session.commit()
    assert (await w.client.get(ready["download_url"], headers=w.customer.headers)).status_code == 410
    assert (
        await w.jobs.execute(
            "deletion.forget_expired_exports", {}, job_id=0, attempt=0, resources=w.jobs.worker_resources
        )
        == 1
    )


async def test_i_delete_my_account_and_the_org_i_own_alone(world: World) -> None:
    w = world
    made = await w.furnish()
    org_id = w.customer.org.id
    colleague = await create_account(w.session, w.resources.settings, org=w.customer.org, role="member")  # type: ignore[arg-type]
    asked = await w.client.delete("/api/v1/users/me", headers=w.customer.headers)
    assert asked.status_code == 202 and asked.json()["subject"] == "user"
    assert await w.jobs.run_pending() == ["done"]
    assert await w.session.get(User, w.customer.user.id, populate_existing=True) is None
    assert await w.session.get(Org, org_id, populate_existing=True) is None
    assert await w.session.get(User, colleague.user.id, populate_existing=True) is None  # in no org now
    assert await w.rows_of(org_id) == 0
    assert w.telegram.webhook(BOT_TOKEN) is None
    with pytest.raises(stripe.InvalidRequestError):
        w.stripe.client().v1.customers.retrieve(made["customer_id"])
    assert (await w.client.get("/api/v1/users/me", headers=w.customer.headers)).status_code == 401
