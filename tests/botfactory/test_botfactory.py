"""Bots made for customers: the account pool API, creation with fallback, ownership, health checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.alerts.models import Alert
from hutch.app import create_app
from hutch.botfactory.gateway import HealthReport
from hutch.botfactory.models import AccountStatus, BotVerification, CreatorAccount
from hutch.channels.models import Channel, ChannelStatus
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import DEFAULT_PASSWORD, Account, create_account
from tests.fakes.botfather import FakeBotFather, FakeCreatorClients, fake_session
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers
from tests.web.test_dashboard import csrf_of

SESSION = fake_session()
API_HASH = "0123456789abcdef0123456789abcdef"


@dataclass
class Factory:
    client: AsyncClient
    session: AsyncSession
    resources: Resources
    father: FakeBotFather
    telegram: FakeTelegramServer
    admin: Account
    customer: Account
    agent_id: str

    @property
    def clients(self) -> FakeCreatorClients:
        assert isinstance(self.resources.creator_clients, FakeCreatorClients)
        return self.resources.creator_clients

    async def add_account(self, phone: str, **extra: Any) -> dict[str, Any]:
        body = {"phone": phone, "api_id": 12345, "api_hash": API_HASH, "session": SESSION, **extra}
        response = await self.client.post(
            "/api/v1/admin/creator-accounts", json=body, headers=self.admin.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def run_jobs(self) -> list[Any]:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return await self.resources.jobs.run_pending()

    @property
    def auto(self) -> str:
        return f"/api/v1/agents/{self.agent_id}/channels/telegram/auto"

    async def request_bot(self, name: str | None = None) -> dict[str, Any]:
        response = await self.client.post(
            self.auto, json={"name": name} if name else {}, headers=self.customer.headers
        )
        assert response.status_code == 202, response.text
        await self.run_jobs()
        latest = await self.client.get(self.auto, headers=self.customer.headers)
        assert latest.status_code == 200
        return dict(latest.json())

    async def alerts(self) -> list[Alert]:
        return list((await self.session.scalars(select(Alert).order_by(Alert.created_at))).all())

    async def tell_bot(self, channel_id: str, text: str, sender: Sender = Sender()) -> list[str]:
        channel = await self.session.get(Channel, channel_id)
        assert channel is not None and channel.token_encrypted is not None
        token = self.resources.secret_box.decrypt(channel.token_encrypted)
        webhook = self.telegram.webhook(token)
        assert webhook is not None
        before = len(self.telegram.sent_texts(sender.id, token=token))
        response = await self.client.post(
            f"/webhooks/telegram/{channel_id}",
            json=text_update(text, sender=sender),
            headers=webhook_headers(webhook.secret_token),
        )
        assert response.status_code == 200
        await self.run_jobs()
        return self.telegram.sent_texts(sender.id, token=token)[before:]


@pytest.fixture
async def factory(
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Factory]:
    telegram_server.reset()
    configured = settings.model_copy(
        update={"telegram_api_base": telegram_server.base_url, "botfactory_step_timeout": 0.3}
    )
    resources = build_test_resources(configured, database, database_url)
    father = FakeBotFather(telegram_server)
    resources.creator_clients = father.clients()
    async with asgi_client(create_app(resources=resources)) as client:
        admin = await create_account(session, settings, platform_admin=True, org_name="Operator")
        customer = await create_account(session, settings, org_name="Acme")
        agent = await client.post(
            "/api/v1/agents", json={"name": "Ada", "model": "demo/echo"}, headers=customer.headers
        )
        assert agent.status_code == 201
        yield Factory(
            client, session, resources, father, telegram_server, admin, customer, agent.json()["id"]
        )


async def test_the_pool_is_for_platform_admins_and_never_shows_its_secrets(factory: Factory) -> None:
    f = factory
    added = await f.add_account("+15550000001", priority=5, daily_cap=3)
    assert added["status"] == "unknown" and added["priority"] == 5 and added["daily_cap"] == 3
    assert API_HASH not in str(added) and SESSION not in str(added)
    stored = await f.session.get(CreatorAccount, added["id"])
    assert (
        stored is not None
        and API_HASH not in stored.api_hash_encrypted
        and SESSION not in stored.session_encrypted
    )
    row = (await f.session.execute(sql_text("SELECT * FROM creator_accounts"))).one()
    assert API_HASH not in str(row) and SESSION not in str(row)

    body = {"phone": "+15550000001", "api_id": 1, "api_hash": API_HASH, "session": SESSION}
    again = await f.client.post("/api/v1/admin/creator-accounts", json=body, headers=f.admin.headers)
    assert again.status_code == 409
    for bad in (
        {**body, "phone": "5550000002"},
        {**body, "phone": "+15550000003", "api_hash": "nothex!"},
        {**body, "phone": "+15550000004", "session": "x" * 40},  # not a session: no job would ever log in
        {**body, "phone": "+15550000005", "api_id": 2**37},
    ):
        assert (
            await f.client.post("/api/v1/admin/creator-accounts", json=bad, headers=f.admin.headers)
        ).status_code == 422
    refused = await f.client.post("/api/v1/admin/creator-accounts", json=body, headers=f.customer.headers)
    assert refused.status_code == 403
    assert (
        await f.client.get("/api/v1/admin/creator-accounts", headers=f.customer.headers)
    ).status_code == 403

    url = f"/api/v1/admin/creator-accounts/{added['id']}"
    changed = await f.client.patch(url, json={"priority": 9, "status": "locked"}, headers=f.admin.headers)
    assert (
        changed.status_code == 200
        and changed.json()["priority"] == 9
        and changed.json()["status"] == "locked"
    )
    checked = await f.client.post(f"{url}/check", headers=f.admin.headers)
    assert checked.status_code == 200 and checked.json()["status"] == "active"
    listed = (await f.client.get("/api/v1/admin/creator-accounts", headers=f.admin.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == added["id"]
    assert (await f.client.delete(url, headers=f.admin.headers)).status_code == 204
    assert (await f.client.get(url, headers=f.admin.headers)).status_code == 404


async def test_without_accounts_the_customer_is_told_to_bring_a_token(factory: Factory) -> None:
    response = await factory.client.post(factory.auto, json={}, headers=factory.customer.headers)
    assert response.status_code == 503 and "@BotFather" in response.json()["detail"]
    assert (await factory.client.get(factory.auto, headers=factory.customer.headers)).status_code == 404


async def test_a_bot_is_made_connected_and_waits_for_its_owner(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    png = _png()
    uploaded = await f.client.put(
        f"/api/v1/agents/{f.agent_id}/avatar",
        files={"file": ("me.png", png, "image/png")},
        headers=f.customer.headers,
    )
    assert uploaded.status_code == 200
    queued = await f.client.post(f.auto, json={"name": "Ada Helper"}, headers=f.customer.headers)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    twice = await f.client.post(f.auto, json={}, headers=f.customer.headers)
    assert twice.status_code == 409 and "already being created" in twice.json()["detail"]
    assert await f.run_jobs() == ["created"]

    result = (await f.client.get(f.auto, headers=f.customer.headers)).json()
    [bot] = f.father.all_bots()
    assert result["status"] == "succeeded" and result["bot_username"] == bot.username == "acme_ada_helper_bot"
    assert bot.name == "Ada Helper" and bot.description and "Ada" in bot.description
    assert bot.photo is not None and bot.photo.startswith(b"\x89PNG")
    assert bot.token not in str(result)
    verification = result["verification"]
    assert verification["verified"] is False and len(verification["code"]) == 8
    assert verification["deep_link"] == f"https://t.me/{bot.username}?start={verification['code']}"

    channel = await f.session.get(Channel, result["channel_id"])
    assert channel is not None and channel.status is ChannelStatus.UNVERIFIED
    assert bot.token not in (channel.token_encrypted or "")
    webhook = f.telegram.webhook(bot.token)
    assert webhook is not None and webhook.url.endswith(f"/webhooks/telegram/{channel.id}")
    account = (await f.session.scalars(select(CreatorAccount))).one()
    assert account.created_bots == 1 and account.status is AccountStatus.ACTIVE and account.busy_until is None

    again = await f.client.post(f.auto, json={}, headers=f.customer.headers)
    assert again.status_code == 409 and "already has a Telegram bot" in again.json()["detail"]


async def test_ownership_is_proven_once_with_the_code(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    result = await f.request_bot()
    channel_id, code = result["channel_id"], result["verification"]["code"]
    stranger, owner = Sender(id=777, username="mallory"), Sender(id=5_550_001, username="ada_l")

    assert "being set up" in (await f.tell_bot(channel_id, "hello there", stranger))[0]
    assert (
        "not this bot's verification code" in (await f.tell_bot(channel_id, "/start WRONGCODE", stranger))[0]
    )
    verification = await f.session.get(BotVerification, channel_id)
    assert verification is not None and verification.failed_attempts == 1

    [welcome] = await f.tell_bot(channel_id, f"/start {code}", owner)
    assert welcome.startswith("Verified") and "Ada" in welcome
    await f.session.refresh(verification)
    channel = await f.session.get(Channel, channel_id)
    assert channel is not None
    await f.session.refresh(channel)
    assert channel.status is ChannelStatus.ACTIVE and channel.owner_external_id == "5550001"
    assert verification.owner_telegram_id == "5550001" and verification.owner_username == "ada_l"
    shown = (await f.client.get(f.auto, headers=f.customer.headers)).json()["verification"]
    assert shown == {
        "verified": True,
        "owner_username": "ada_l",
        "code": None,
        "deep_link": None,
        "expires_at": None,
    }

    # Used once: the code is now just a /start for anyone; a public agent answers everyone, a personal
    # one only its owner.
    assert "I am Ada" in (await f.tell_bot(channel_id, f"/start {code}", stranger))[0]
    personal = await f.client.patch(
        f"/api/v1/agents/{f.agent_id}", json={"audience": "personal"}, headers=f.customer.headers
    )
    assert personal.status_code == 200
    assert (await f.tell_bot(channel_id, f"/start {code}", stranger)) == [
        "This is a private assistant; only its owner can talk to it."
    ]
    assert (await f.tell_bot(channel_id, "How are you?", owner)) == ["[Demo — no AI] You said: How are you?"]
    renewed = await f.client.post(f"{f.auto}/code", headers=f.customer.headers)
    assert renewed.status_code == 409


async def test_an_expired_or_replaced_code_no_longer_works(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    result = await f.request_bot()
    channel_id, first = result["channel_id"], result["verification"]["code"]
    await f.session.execute(
        update(BotVerification)
        .where(BotVerification.channel_id == channel_id)
        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    )
    await f.session.commit()
    assert "no longer valid" in (await f.tell_bot(channel_id, first))[0]
    assert (await f.client.get(f.auto, headers=f.customer.headers)).json()["verification"]["code"] is None

    renewed = (await f.client.post(f"{f.auto}/code", headers=f.customer.headers)).json()["verification"]
    assert renewed["code"] != first and renewed["expires_at"] is not None
    assert "not this bot's verification code" in (await f.tell_bot(channel_id, first))[0]
    assert (await f.tell_bot(channel_id, renewed["code"]))[0].startswith("Verified")


async def test_too_many_wrong_guesses_void_the_code(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    result = await f.request_bot()
    for _ in range(10):
        await f.tell_bot(result["channel_id"], "/start AAAAAAAA")
    assert "no longer valid" in (await f.tell_bot(result["channel_id"], result["verification"]["code"]))[0]


async def test_accounts_fail_over_until_one_makes_the_bot(factory: Factory) -> None:
    f = factory
    resting = await f.add_account("+15550000001", priority=30)
    locked = await f.add_account("+15550000002", priority=20)
    silent = await f.add_account("+15550000003", priority=10)
    good = await f.add_account("+15550000004", priority=0)
    f.father.account("+15550000001", wait_seconds=600)
    f.father.account("+15550000002", restricted=True)
    f.father.account("+15550000003", silent_after=1)
    result = await f.request_bot()
    assert result["status"] == "succeeded"
    [bot] = f.father.all_bots()
    assert bot in f.father.accounts["+15550000004"].bots

    accounts = {a.id: a for a in (await f.session.scalars(select(CreatorAccount))).all()}
    for account in accounts.values():
        await f.session.refresh(account)
    now = datetime.now(UTC)
    assert accounts[resting["id"]].resting_until is not None and accounts[
        resting["id"]
    ].resting_until > now + timedelta(minutes=9)
    assert accounts[locked["id"]].status is AccountStatus.LOCKED and "restricted" in (
        accounts[locked["id"]].last_error or ""
    )
    assert "did not answer" in (accounts[silent["id"]].last_error or "")
    assert accounts[good["id"]].created_bots == 1 and all(a.busy_until is None for a in accounts.values())
    [alert] = await f.alerts()
    assert alert.kind == "botfactory.account" and "+15550000002" in alert.subject

    # Next time the resting and locked accounts are skipped, and the account that proved itself (active)
    # goes before the one still unproven, whatever their priorities.
    f.father.accounts["+15550000003"].silent_after = None
    other = await create_account(f.session, f.resources.settings, org_name="Beta")
    agent = await f.client.post(
        "/api/v1/agents", json={"name": "Bo", "model": "demo/echo"}, headers=other.headers
    )
    f.customer, f.agent_id = other, agent.json()["id"]
    assert (await f.request_bot())["status"] == "succeeded"
    assert len(f.father.accounts["+15550000004"].bots) == 2
    assert [f.father.accounts[f"+1555000000{i}"].conversations for i in (1, 2, 3)] == [1, 1, 1]


async def test_when_no_account_can_serve_the_request_fails_and_admins_hear_of_it(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    await f.add_account("+15550000002", daily_cap=1)
    f.father.account("+15550000001", at_bot_limit=True)
    f.father.accounts["+15550000002"] = f.father.script("+15550000002")
    f.father.taken.add("acme_ada_bot")  # the first username is taken: the second one is used
    first = await f.request_bot()
    assert first["status"] == "succeeded" and first["bot_username"] == "ada_bot"

    other = await create_account(f.session, f.resources.settings, org_name="Beta")
    agent = await f.client.post(
        "/api/v1/agents", json={"name": "Bo", "model": "demo/echo"}, headers=other.headers
    )
    f.customer, f.agent_id = other, agent.json()["id"]
    failed = await f.request_bot()  # one account at its bot limit (now locked), the other at its daily cap
    assert (
        failed["status"] == "failed"
        and "No Telegram account of the bot factory is available" in failed["error"]
    )
    assert failed["bot_username"] is None and failed["verification"] is None
    kinds = {a.kind for a in await f.alerts()}
    assert {"botfactory.account", "botfactory.exhausted", "botfactory.pool_low"} <= kinds


async def test_every_username_taken_fails_the_request_with_a_hint(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    await f.add_account("+15550000002")
    original = f.father.accounts

    class AllTaken(set[str]):
        def __contains__(self, item: object) -> bool:
            return True

    f.father.taken = AllTaken()
    result = await f.request_bot()
    assert result["status"] == "failed" and "choose another bot name" in result["error"]
    assert sum(s.conversations for s in original.values()) == 1  # another account would meet the same


async def test_a_made_bot_survives_telegram_being_down_when_connecting(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    f.telegram.bad_gateway("getMe", times=1)
    queued = await f.client.post(f.auto, json={}, headers=f.customer.headers)
    assert queued.status_code == 202
    jobs = f.resources.jobs
    assert isinstance(jobs, RecordingJobQueue)
    pending = list(jobs.deferred)
    with pytest.raises(Exception, match="Telegram did not answer"):
        await jobs.run_pending()
    jobs.deferred.extend(pending)  # the worker retries the job
    assert await jobs.run_pending() == ["created"]
    assert len(f.father.all_bots()) == 1  # the retry used the kept token, not a second bot
    assert (await f.client.get(f.auto, headers=f.customer.headers)).json()["status"] == "succeeded"


async def test_the_health_check_records_changes_and_alerts(factory: Factory) -> None:
    f = factory
    ok = await f.add_account("+15550000001")
    banned = await f.add_account("+15550000002")
    locked = await f.add_account("+15550000003")
    f.father.account(
        "+15550000002", health=HealthReport(AccountStatus.BANNED, "Telegram deactivated the account")
    )
    await f.client.patch(
        f"/api/v1/admin/creator-accounts/{locked['id']}", json={"status": "locked"}, headers=f.admin.headers
    )
    jobs = f.resources.jobs
    assert isinstance(jobs, RecordingJobQueue)
    result = await jobs.execute(
        "botfactory.check_accounts", {"timestamp": 0}, job_id=0, attempt=0, resources=f.resources
    )
    assert result == {
        ok["id"]: "active",
        banned["id"]: "banned",
        locked["id"]: "locked",
    }  # only admins unlock
    alerts = await f.alerts()
    assert [(a.kind, a.severity.value) for a in alerts] == [
        ("botfactory.account", "critical"),
        ("botfactory.pool_low", "warning"),
    ]
    assert "+15550000002" in alerts[0].subject and "1 usable" in alerts[1].subject
    assert ("admin.deliver_alert", {"alert_id": alerts[0].id}) in jobs.deferred

    again = await jobs.execute(
        "botfactory.check_accounts", {"timestamp": 0}, job_id=0, attempt=0, resources=f.resources
    )
    assert again == result and len(await f.alerts()) == 2  # the same situation is not announced twice
    assert sorted(f.clients.checked) == sorted(["+15550000001", "+15550000003"] * 2 + ["+15550000002"])


async def test_another_orgs_agent_is_not_found(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    other = await create_account(f.session, f.resources.settings, org_name="Beta")
    for method, path in (("POST", f.auto), ("GET", f.auto), ("POST", f"{f.auto}/code")):
        response = await f.client.request(
            method, path, json={} if method == "POST" else None, headers=other.headers
        )
        assert response.status_code == 404, (method, path)


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 120, 40)).save(out, format="PNG")
    return out.getvalue()


async def test_the_dashboard_shows_the_new_bot_and_its_code(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000001")
    form = await f.client.get("/login")
    signed_in = await f.client.post(
        "/login", data={"csrf": csrf_of(form), "email": f.customer.user.email, "password": DEFAULT_PASSWORD}
    )
    assert signed_in.status_code == 303
    tab = f"/app/agents/{f.agent_id}/channels"
    page = await f.client.get(tab)
    assert "Create a bot for me" in page.text
    asked = await f.client.post(f"{tab}/telegram/auto", data={"csrf": csrf_of(page), "name": "Ada Bot"})
    assert asked.status_code == 303
    assert "creating" in (await f.client.get(tab)).text or "queued" in (await f.client.get(tab)).text
    await f.run_jobs()
    shown = await f.client.get(tab)
    code = (await f.client.get(f.auto, headers=f.customer.headers)).json()["verification"]["code"]
    assert code in shown.text and f"https://t.me/acme_ada_bot?start={code}" in shown.text
    renewed = await f.client.post(f"{tab}/telegram/auto/code", data={"csrf": csrf_of(shown)})
    assert renewed.status_code == 303
    new = (await f.client.get(f.auto, headers=f.customer.headers)).json()["verification"]["code"]
    assert new != code and new in (await f.client.get(tab)).text


async def test_bots_deleted_and_asked_for_again_count_against_the_plans_day(factory: Factory) -> None:
    f = factory
    await f.add_account("+15550000009")
    await f.session.execute(update(Org).where(Org.id == f.customer.org.id).values(plan="botday"))  # 2 a day
    await f.session.commit()
    channels = f"/api/v1/agents/{f.agent_id}/channels"
    for made in range(1, 3):  # make the bot, delete it, ask again
        await f.request_bot()
        assert len(f.father.all_bots()) == made
        [bot] = (await f.client.get(channels, headers=f.customer.headers)).json()["items"]
        removed = await f.client.delete(f"{channels}/{bot['id']}", headers=f.customer.headers)
        assert removed.status_code == 204
    refused = await f.client.post(f.auto, json={}, headers=f.customer.headers)
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 86_400
    detail = refused.json()["detail"]
    assert "Bot a day plan allows 2 Telegram bot requests a day" in detail and "tomorrow (UTC)" in detail
    assert len(f.father.all_bots()) == 2  # no third bot from the operator's accounts

    # A new agent in the same org is refused too: the day's count is the org's.
    other = await f.client.post(
        "/api/v1/agents", json={"name": "Bo", "model": "demo/echo"}, headers=f.customer.headers
    )
    deleted = await f.client.delete(f"/api/v1/agents/{f.agent_id}", headers=f.customer.headers)
    assert deleted.status_code in (202, 204)
    again = await f.client.post(
        f"/api/v1/agents/{other.json()['id']}/channels/telegram/auto", json={}, headers=f.customer.headers
    )
    assert again.status_code == 429
    assert await f.run_jobs() == [] and len(f.father.all_bots()) == 2
