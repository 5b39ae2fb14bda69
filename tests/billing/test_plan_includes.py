"""Provisioning that follows payment, through the API and Stripe's signed webhooks (replayed and shuffled):
a plan's included runtime (the process driver for real) and Telegram bot (the bot factory against the fake
BotFather and Bot API) are provisioned on checkout, a trial or an admin's assignment, the owner is told by
email and in their linked chat, suspended when the subscription ends or stays unpaid past the grace period,
and resumed on payment."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.app import create_app
from hutch.billing.models import BillingAccount, Inclusion
from hutch.channels.models import Channel, ChannelLink, LinkStatus
from hutch.core.ids import new_id
from hutch.db.engine import Database
from hutch.provisioning.flow import SWEEP_JOB
from hutch.resources import Resources
from hutch.runtimes.drivers.process import ProcessDriver
from hutch.runtimes.models import Runtime, RuntimeStatus
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.botfather import FakeBotFather, fake_session
from tests.fakes.smtp import ReceivedEmail, SmtpServer
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.stripe_signing import new_webhook_secret, sign_event
from tests.fakes.telegram import FakeTelegramServer

JSON = dict[str, Any]
PLATFORM_TOKEN = "777000111:AAE_platform_bot_of_the_provisioning_tests"
OWNER_CHAT = "900100"
GRACE_HOURS = 24


@dataclass
class Shop:
    """Hutch with Stripe, the bot factory, a platform bot and runtimes configured; an owner with an agent and
    a linked Telegram chat."""

    client: AsyncClient
    session: AsyncSession
    resources: Resources
    stripe: FakeStripe
    telegram: FakeTelegramServer
    mailbox: SmtpServer
    secret: str
    owner: Account
    admin: Account
    agent_id: str | None

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    async def deliver(self, events: list[JSON]) -> list[str]:
        statuses = []
        for event in events:
            signed = sign_event(event, self.secret)
            answer = await self.client.post("/webhooks/stripe", content=signed.body, headers=signed.headers)
            assert answer.status_code == 200, answer.text
            statuses.append(answer.json()["status"])
        return statuses

    async def checkout(self, plan: str = "bundle") -> list[JSON]:
        started = await self.client.post(
            "/api/v1/billing/checkout",
            json={"plan": plan, "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"},
            headers=self.owner.headers,
        )
        assert started.status_code == 200, started.text
        return self.stripe.complete(started.json()["session_id"])

    async def includes(self) -> dict[str, JSON]:
        answer = await self.client.get("/api/v1/billing/subscription", headers=self.owner.headers)
        assert answer.status_code == 200, answer.text
        return {item["item"]: item for item in answer.json()["includes"]}

    async def states(self) -> dict[str, str]:
        return {item: found["state"] for item, found in (await self.includes()).items()}

    async def runtime(self) -> Runtime | None:
        return await self.session.scalar(
            select(Runtime)
            .where(Runtime.org_id == self.owner.org.id)
            .execution_options(populate_existing=True)
        )

    async def bot(self) -> Channel:
        found = await self.session.scalar(
            select(Channel)
            .where(Channel.org_id == self.owner.org.id)
            .execution_options(populate_existing=True)
        )
        assert found is not None and found.token_encrypted is not None
        return found

    def bot_token(self, channel: Channel) -> str:
        assert channel.token_encrypted is not None
        return self.resources.secret_box.decrypt(channel.token_encrypted)

    def notices(self) -> list[ReceivedEmail]:
        return [m for m in self.mailbox.messages(self.owner.user.email) if "plan" in m.body.lower()]

    def chat(self) -> list[str]:
        return self.telegram.sent_texts(OWNER_CHAT, token=PLATFORM_TOKEN)

    async def sweep(self) -> int:
        """The minute's sweep, as the worker runs it: how many orgs it followed."""
        assert self.jobs.worker_resources is not None
        found: int = await self.jobs.execute(
            SWEEP_JOB, {"timestamp": 0}, job_id=0, attempt=0, resources=self.jobs.worker_resources
        )
        return found

    async def subscription_id(self) -> str:
        account = await self.session.get(BillingAccount, self.owner.org.id, populate_existing=True)
        assert account is not None and account.stripe_subscription_id is not None
        return account.stripe_subscription_id

    async def add_agent(self, name: str = "Ada") -> str:
        created = await self.client.post(
            "/api/v1/agents", json={"name": name, "model": "demo/echo"}, headers=self.owner.headers
        )
        assert created.status_code == 201, created.text
        agent_id: str = created.json()["id"]
        return agent_id


@pytest.fixture
async def shop_parts(
    fake_stripe_server: FakeStripe,
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
    tmp_path: Path,
) -> AsyncIterator[tuple[Resources, AsyncClient, str]]:
    fake_stripe_server.reset()
    telegram_server.reset()
    telegram_server.add_bot(PLATFORM_TOKEN, "hutch_platform_bot")
    secret = new_webhook_secret()
    configured = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "runtime_ready_timeout": 30.0,
            "stripe_api_base": fake_stripe_server.base_url,
            "stripe_secret_key": SecretStr(TEST_API_KEY),
            "stripe_webhook_secret": SecretStr(secret),
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_token": SecretStr(PLATFORM_TOKEN),
            "botfactory_step_timeout": 0.3,
        }
    )
    resources = build_test_resources(configured, database, database_url)
    plans = resources.plans
    resources.plans = plans.model_copy(
        update={"billing": plans.billing.model_copy(update={"past_due_grace_hours": GRACE_HOURS})}
    )
    resources.creator_clients = FakeBotFather(telegram_server).clients()
    try:
        async with asgi_client(create_app(resources=resources)) as client:
            yield resources, client, secret
    finally:
        assert resources.stripe is not None
        await resources.stripe.close()
        for handle in (await session.scalars(select(Runtime.handle))).all():
            if handle and handle[0].isdigit():  # a test that failed halfway leaves no process behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(handle.split(":")[0]), signal.SIGKILL)
        ProcessDriver().stop_launcher(tmp_path / "runtimes")


@pytest.fixture
async def bare_shop(
    shop_parts: tuple[Resources, AsyncClient, str],
    session: AsyncSession,
    fake_stripe_server: FakeStripe,
    telegram_server: FakeTelegramServer,
    mailbox: SmtpServer,
) -> Shop:
    """An owner without an agent, and no creator account for the bot factory."""
    resources, client, secret = shop_parts
    admin = await create_account(session, resources.settings, platform_admin=True, org_name="Operator")
    owner = await create_account(session, resources.settings, org_name="Acme", email="owner@acme.example")
    return Shop(
        client, session, resources, fake_stripe_server, telegram_server, mailbox, secret, owner, admin, None
    )


@pytest.fixture
async def shop(bare_shop: Shop) -> Shop:
    """The owner with an agent and a linked Telegram chat; the bot factory with a creator account."""
    s = bare_shop
    s.agent_id = await s.add_agent()
    s.session.add(
        ChannelLink(
            id=new_id("lnk"),
            org_id=s.owner.org.id,
            user_id=s.owner.user.id,
            agent_id=s.agent_id,
            channel="telegram",
            address=OWNER_CHAT,
            status=LinkStatus.ACTIVE,
            code_hash=new_id("code").ljust(64, "0"),
            code_expires_at=datetime.now(UTC),
        )
    )
    await s.session.commit()
    added = await s.client.post(
        "/api/v1/admin/creator-accounts",
        json={"phone": "+15550000001", "api_id": 12345, "api_hash": "0" * 32, "session": fake_session()},
        headers=s.admin.headers,
    )
    assert added.status_code == 201, added.text
    return s


def _subscription_of(events: list[JSON]) -> str:
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    return str(created["data"]["object"]["id"])


def _restamp(events: list[JSON], start: int) -> list[JSON]:
    """The events a second apart, in the order Stripe made them."""
    return [{**event, "created": start + n} for n, event in enumerate(events)]


@pytest.mark.parametrize("seed", [3, 11])
async def test_a_checkout_provisions_what_the_plan_includes_and_tells_the_owner(
    shop: Shop, seed: int
) -> None:
    s = shop
    events = await s.checkout()
    events += s.stripe.advance_trial_end(_subscription_of(events))
    shuffled = _restamp(events, start=1_800_000_000)
    random.Random(seed).shuffle(shuffled)
    await s.deliver(shuffled)
    assert set(await s.deliver(shuffled)) == {"duplicate"}  # replayed: no second effect
    await s.jobs.run_pending()

    runtime = await s.runtime()
    assert runtime is not None and runtime.agent_id == s.agent_id and runtime.status is RuntimeStatus.READY
    assert runtime.endpoint is not None
    assert httpx.get(f"{runtime.endpoint}/healthz", timeout=5).status_code == 200
    bot = await s.bot()
    assert bot.agent_id == s.agent_id and s.telegram.webhook(s.bot_token(bot)) is not None
    included = await s.includes()
    assert {k: v["state"] for k, v in included.items()} == {"runtime": "ready", "telegram_bot": "ready"}
    assert included["telegram_bot"]["bot_username"] == bot.username
    assert included["runtime"]["agent_name"] == "Ada"

    # Told once each, by email and in the linked chat, however often the events came.
    mails = s.mailbox.messages(s.owner.user.email)
    assert [m.subject for m in mails if "ready" in m.subject] == [
        "Ada is ready",  # the runtime's own notice
        f"Acme: your Telegram bot @{bot.username} is ready",
    ]
    ready = next(m for m in mails if "Telegram bot" in m.subject)
    assert f"https://t.me/{bot.username}" in ready.body and f"/app/agents/{s.agent_id}/channels" in ready.body
    assert any(f"@{bot.username} is ready" in text for text in s.chat())
    assert any("Ada is ready" in text for text in s.chat())

    # Followed again (a late event, the sweep): nothing new is made or told.
    s.jobs.deferred.append(("provisioning.follow_plan", {"org_id": s.owner.org.id}))
    assert await s.jobs.run_pending() == [{"runtime": "ready", "telegram_bot": "ready"}]
    assert len(s.mailbox.messages(s.owner.user.email)) == len(mails)

    await s.client.delete(f"/api/v1/agents/{s.agent_id}/runtime", headers=s.owner.headers)
    await s.jobs.run_pending()


async def test_cancel_and_unpaid_past_grace_suspend_and_payment_resumes(shop: Shop) -> None:
    s = shop
    await s.deliver(await s.checkout())
    subscription = await s.subscription_id()
    await s.deliver(s.stripe.advance_trial_end(subscription))
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "ready", "telegram_bot": "ready"}
    bot = await s.bot()
    token = s.bot_token(bot)

    # Unpaid, within the grace period: everything goes on.
    await s.deliver(s.stripe.fail_next_invoice(subscription))
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "ready", "telegram_bot": "ready"}
    assert await s.sweep() == 0

    # Past it: the sweep suspends both (the runtime stopped, its workspace kept; the bot paused).
    await s.session.execute(
        update(BillingAccount)
        .where(BillingAccount.org_id == s.owner.org.id)
        .values(past_due_since=datetime.now(UTC) - timedelta(hours=GRACE_HOURS + 1))
    )
    await s.session.commit()
    assert await s.sweep() == 1
    await s.jobs.run_pending()
    runtime = await s.runtime()
    assert runtime is not None and runtime.status is RuntimeStatus.STOPPED
    assert s.telegram.webhook(token) is None  # Telegram no longer sends its messages here
    included = await s.includes()
    assert {k: v["state"] for k, v in included.items()} == {
        "runtime": "suspended",
        "telegram_bot": "suspended",
    }
    assert "past due" in (included["telegram_bot"]["detail"] or "")
    [paused] = [m for m in s.notices() if "paused" in m.body]
    assert "dedicated runtime is paused" in paused.body and "Telegram bot is paused" in paused.body
    assert any("is paused" in text for text in s.chat())

    # Paid: both come back.
    await s.deliver(s.stripe.pay_invoice(subscription))
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "ready", "telegram_bot": "ready"}
    webhook = s.telegram.webhook(token)
    assert webhook is not None and webhook.url.endswith(f"/webhooks/telegram/{bot.id}")
    assert any("running again" in m.body for m in s.notices())

    # Canceled at the period's end: suspended again, the same bot and runtime kept.
    canceled = await s.client.post("/api/v1/billing/subscription/cancel", headers=s.owner.headers)
    assert canceled.status_code == 200
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "ready", "telegram_bot": "ready"}  # paid until the period ends
    await s.deliver(s.stripe.advance_period_end(subscription))
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "suspended", "telegram_bot": "suspended"}
    assert s.telegram.webhook(token) is None
    stopped = await s.runtime()
    assert stopped is not None and stopped.status is RuntimeStatus.STOPPED

    # A new subscription resumes them: no second runtime, no second bot.
    await s.deliver(await s.checkout())
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "ready", "telegram_bot": "ready"}
    assert s.telegram.webhook(token) is not None and (await s.bot()).id == bot.id
    resumed = await s.runtime()
    assert resumed is not None and resumed.id == runtime.id

    await s.client.delete(f"/api/v1/agents/{s.agent_id}/runtime", headers=s.owner.headers)
    await s.jobs.run_pending()


async def test_an_admin_assigning_the_plan_provisions_it_once_the_first_agent_exists(
    bare_shop: Shop,
) -> None:
    s = bare_shop
    assigned = await s.client.put(
        f"/api/v1/admin/orgs/{s.owner.org.id}/plan", json={"plan": "bundle"}, headers=s.admin.headers
    )
    assert assigned.status_code == 200
    await s.jobs.run_pending()
    included = await s.includes()
    assert {k: v["state"] for k, v in included.items()} == {"runtime": "waiting", "telegram_bot": "waiting"}
    assert "first agent" in (included["runtime"]["detail"] or "")
    [waiting] = s.notices()
    assert "create your first agent" in waiting.body

    agent_id = await s.add_agent("Bea")
    assert await s.sweep() == 1
    await s.jobs.run_pending()
    runtime = await s.runtime()
    assert runtime is not None and runtime.agent_id == agent_id and runtime.status is RuntimeStatus.READY
    # No creator account: the bot waits for the customer, who is sent where one tap makes it.
    included = await s.includes()
    assert {k: v["state"] for k, v in included.items()} == {"runtime": "ready", "telegram_bot": "waiting"}
    assert "one tap" in (included["telegram_bot"]["detail"] or "")
    link = f"https://hutch.example/app/agents/{agent_id}/channels"
    assert any(link in m.body for m in s.notices())

    # The bot the customer connects there is the included one.
    s.telegram.add_bot("123456:AAF_the_customers_own_bot", "bea_helper_bot")
    connected = await s.client.post(
        f"/api/v1/agents/{agent_id}/channels/telegram",
        json={"bot_token": "123456:AAF_the_customers_own_bot"},
        headers=s.owner.headers,
    )
    assert connected.status_code == 201, connected.text
    assert await s.sweep() == 1
    await s.jobs.run_pending()
    included = await s.includes()
    assert included["telegram_bot"]["state"] == "ready"
    assert included["telegram_bot"]["bot_username"] == "bea_helper_bot"

    # The agent deleted (its runtime and bot with it): both wait for the org's next first agent.
    deleted = await s.client.delete(f"/api/v1/agents/{agent_id}", headers=s.owner.headers)
    assert deleted.status_code == 204
    await s.jobs.run_pending()
    assert await s.sweep() == 1
    await s.jobs.run_pending()
    assert await s.states() == {"runtime": "waiting", "telegram_bot": "waiting"}
    assert await s.runtime() is None


async def test_a_plan_without_includes_provisions_nothing(shop: Shop) -> None:
    s = shop
    listed = (await s.client.get("/api/v1/billing/plans")).json()["items"]
    includes = {plan["id"]: plan["includes"] for plan in listed}
    assert (includes["bundle"], includes["starter"]) == (["runtime", "telegram_bot"], [])
    await s.deliver(await s.checkout("starter"))
    await s.deliver(s.stripe.advance_trial_end(await s.subscription_id()))
    results = await s.jobs.run_pending()
    assert results and all(r == {} for r in results if isinstance(r, dict))
    assert await s.includes() == {}
    assert await s.runtime() is None
    assert await s.session.scalar(select(Channel.id).where(Channel.org_id == s.owner.org.id)) is None
    assert await s.session.scalar(select(Inclusion.item).where(Inclusion.org_id == s.owner.org.id)) is None
    assert s.notices() == [] and s.chat() == []
