"""A customer's own Telegram bot in Chromium: onboarding's Telegram choice, the link and its QR code, the two
taps on Telegram's side (the fake Bot API), and the dashboard hearing that the bot is connected."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from pydantic import SecretStr

from hutch.channels.telegram.platform import platform_secret
from hutch.settings import Settings
from tests.conftest import TEST_SECRET_KEY, PostgresServer
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_journey import check
from tests.fakes.telegram import FakeTelegramServer, Sender, start_update, webhook_headers
from tests.live_server import Served, serve_hutch
from tests.test_worker_process import wait_until

MANAGER_TOKEN = "555000444:AAE_platform_bot_for_the_browser_test"
ADA = Sender()


@pytest.fixture(scope="module")
def hutch_with_a_platform_bot(
    postgres: PostgresServer,
    migrated_template: str,
    telegram_server: FakeTelegramServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    telegram_server.reset()
    telegram_server.add_bot(MANAGER_TOKEN, "hutch_browser_bot", can_manage_bots=True)
    with serve_hutch(
        postgres,
        migrated_template,
        tmp_path_factory.mktemp("e2e-managed"),
        HUTCH_TELEGRAM_BOT_TOKEN=MANAGER_TOKEN,
        HUTCH_TELEGRAM_API_BASE=telegram_server.base_url,
        HUTCH_PUBLIC_URL="https://hutch.example",  # what Telegram is told to call (the test posts instead)
    ) as served:
        yield served


def test_a_customer_creates_their_telegram_bot_from_the_dashboard(
    hutch_with_a_platform_bot: Served, telegram_server: FakeTelegramServer, artifacts: Path
) -> None:
    base, fake = hutch_with_a_platform_bot.base_url, telegram_server
    secret = platform_secret(Settings.model_construct(secret_key=SecretStr(TEST_SECRET_KEY)))

    def telegram_posts(update: dict[str, object]) -> None:
        answer = httpx.post(
            f"{base}/webhooks/telegram/platform", json=update, headers=webhook_headers(secret)
        )
        assert answer.status_code == 200, answer.text

    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base)
        page.goto("/signup")
        page.get_by_label("Email").fill("bots@example.com")
        page.get_by_label("Password").fill("a-long-enough-password")
        page.get_by_label("Company").fill("Bot Shop")
        page.get_by_role("button", name="Sign up").click()
        page.get_by_label("Telegram").check()
        page.get_by_label("Name").fill("Shop Helper")
        page.get_by_role("button", name="Create my assistant").click()
        expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/channels"))
        page.get_by_role("button", name="Create my Telegram bot").click()
        expect(page.locator("#managed-wait svg")).to_be_visible()
        check(page, artifacts, "managed-bot-link")
        link = page.get_by_role("link", name="Open Telegram").get_attribute("href") or ""
        assert link.startswith("https://t.me/hutch_browser_bot?start=")

        # On the phone: the link opens the platform bot, which shows the button; two taps make the bot.
        wait_until(lambda: (fake.webhook(MANAGER_TOKEN) or None) is not None, timeout=30)
        telegram_posts(start_update(link.split("?start=")[1], sender=ADA))
        wait_until(lambda: bool(fake._managed_bot_button(MANAGER_TOKEN, ADA.id)), timeout=30)
        for update in fake.press_managed_bot_button(MANAGER_TOKEN, ADA):
            telegram_posts(update)

        state = page.locator("#managed-state")
        expect(state).to_contain_text(re.compile(r"Connected: @\w+_bot"), timeout=30_000)
        found = re.search(r"@(\w+_bot)", state.inner_text())
        assert found is not None
        username = found.group(1)
        assert username in {b.username for b in fake.bots.values()}
        expect(page.get_by_role("link", name=f"@{username}")).to_be_visible(timeout=15_000)
        check(page, artifacts, "managed-bot-connected")
        browser.close()
