"""What a plan includes, on the billing page in Chromium: an admin puts the org on a plan that includes a
dedicated runtime and a Telegram bot, and the customer sees the runtime go from provisioning to ready (the
process driver, for real, in the served Hutch's worker) and the bot wait for them, with what to do."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from hutch.runtimes.drivers.process import ProcessDriver
from tests.conftest import PostgresServer
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_journey import check
from tests.live_server import Served, serve_hutch

EMAIL, PASSWORD = "includes@example.com", "a-long-enough-password"


@pytest.fixture(scope="module")
def served(
    postgres: PostgresServer, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Path]]:
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    home = tmp_path_factory.mktemp("e2e-includes")
    with serve_hutch(postgres, migrated_template, home) as hutch:
        yield hutch, home
    ProcessDriver().stop_launcher(home / "runtimes")


def _badge(page: Page, item: str) -> str:
    return page.locator(f'li[data-item="{item}"] .badge').inner_text()


def test_the_billing_page_shows_what_the_plan_includes_and_how_each_stands(
    served: tuple[Served, Path], artifacts: Path
) -> None:
    hutch, _ = served
    base = hutch.base_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=base)
        page.goto("/signup")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Company").fill("Bundle Co")
        page.get_by_role("button", name="Sign up").click()
        page.get_by_label("Name").fill("Ada")
        page.get_by_role("button", name="Create my assistant").click()
        expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/"))

        # The deployment's first account is its platform admin: it puts its own org on the plan.
        token = httpx.post(f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        org_id = httpx.get(f"{base}/api/v1/users/me", headers=headers).json()["orgs"][0]["id"]
        assigned = httpx.put(
            f"{base}/api/v1/admin/orgs/{org_id}/plan", json={"plan": "bundle"}, headers=headers
        )
        assert assigned.status_code == 200, assigned.text

        page.goto("/app/billing")
        expect(page.get_by_role("heading", name="Included with your plan")).to_be_visible()
        deadline = time.monotonic() + 60
        while _badge(page, "runtime") != "ready" and time.monotonic() < deadline:
            time.sleep(0.5)
            page.reload()
        runtime = page.locator('li[data-item="runtime"]')
        expect(runtime).to_contain_text("Dedicated runtime for Ada")
        assert _badge(page, "runtime") == "ready"
        bot = page.locator('li[data-item="telegram_bot"]')
        assert _badge(page, "telegram_bot") == "waiting"
        expect(bot).to_contain_text("create the bot in one tap")
        check(page, artifacts, "billing-includes")

        agent_id = runtime.get_by_role("link", name="The runtime").get_attribute("href") or ""
        agent_id = agent_id.split("/")[3]
        browser.close()
    endpoint = httpx.get(f"{base}/api/v1/agents/{agent_id}/runtime", headers=headers).json()["endpoint"]
    removed = httpx.delete(f"{base}/api/v1/agents/{agent_id}/runtime", headers=headers)
    assert removed.status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the worker ends the runtime's process before the server stops
        try:
            httpx.get(f"{endpoint}/healthz", timeout=1)
        except httpx.HTTPError:
            break
        time.sleep(0.2)
