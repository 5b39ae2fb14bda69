"""Self-service in a real browser: switching between two organisations, an API key's limits set and changed,
and an agent's memories shown and forgotten — each page checked with axe-core and photographed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from hutch.db.urls import libpq_conninfo
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveHutch
from tests.e2e.test_journey import check


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def remember(live_hutch: LiveHutch, agent_id: str, end_user: str, fact: str) -> None:
    """A fact the agent kept (the demo model keeps none), written where the agent writes them."""
    with psycopg.connect(libpq_conninfo(live_hutch.database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO memories (id, org_id, agent_id, end_user, kind, content, created_at) "
            "SELECT 'mem_' || substr(md5(random()::text), 1, 20), org_id, id, %s, 'fact', %s, now() "
            "FROM agents WHERE id = %s",
            (end_user, fact, agent_id),
        )


def test_org_switcher_key_settings_and_memories(
    browser: Browser, live_hutch: LiveHutch, artifacts: Path
) -> None:
    base = live_hutch.base_url
    page = browser.new_page(base_url=base)
    page.goto("/signup")
    page.get_by_label("Email").fill("self@example.com")
    page.get_by_label("Password").fill("a-long-enough-password")
    page.get_by_label("Company").fill("First Co")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_label("Name").fill("Rem")
    page.get_by_role("button", name="Create my assistant").click()
    expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/chat"))
    agent_url = page.url.split("?")[0].removesuffix("/chat")
    agent_id = agent_url.rsplit("/", 1)[1]

    # A second organisation of the same person, made through the API.
    tokens = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": "self@example.com", "password": "a-long-enough-password"}
    ).json()
    made = httpx.post(
        f"{base}/api/v1/orgs",
        json={"name": "Second Co"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert made.status_code == 201, made.text

    # API key limits: set when creating, changed later.
    page.goto("/app/api-keys")
    page.get_by_label("Label").fill("limited")
    page.get_by_label("Requests per minute").fill("30")
    page.get_by_label("Monthly budget (USD)").fill("5")
    page.get_by_label("Rem").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    expect(page.locator("table")).to_contain_text("30/min")
    expect(page.locator("table")).to_contain_text("$0.00 of $5.00 this month")
    check(page, artifacts, "20-key-limits")
    page.get_by_role("link", name="Change limited").click()
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_role("button", name="Save key settings").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.get_by_label("Requests per minute")).to_have_value("60")
    check(page, artifacts, "21-key-change")

    # The agent's memories, per person.
    remember(live_hutch, agent_id, "telegram:42", "Likes green tea")
    remember(live_hutch, agent_id, "telegram:42", "Lives in Lyon")
    page.goto(f"{agent_url}/memories")
    expect(page.locator("table")).to_contain_text("Likes green tea")
    check(page, artifacts, "22-memories")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Forget memory 1").click()
    expect(page.get_by_role("status")).to_contain_text("Forgotten")
    expect(page.locator("table tbody tr")).to_have_count(1)

    # The organisation switcher: every page then shows the other organisation.
    page.goto("/app/agents")
    switcher = page.get_by_label("Organisation")
    expect(switcher).to_be_visible()
    check(page, artifacts, "23-org-switcher")
    switcher.select_option(label="Second Co (owner)")
    page.get_by_role("button", name="Switch").click()
    expect(page).to_have_url(re.compile(r"/app/agents$"))
    expect(page.get_by_label("Organisation")).to_have_value(re.compile(r"org_\w+"))
    expect(page.locator("main")).not_to_contain_text("Rem")
    page.goto("/app/api-keys")
    expect(page.locator("main")).not_to_contain_text("limited")
    switcher = page.get_by_label("Organisation")
    switcher.select_option(label="First Co (owner)")
    page.get_by_role("button", name="Switch").click()
    expect(page).to_have_url(re.compile(r"/app/api-keys$"))
    expect(page.locator("main")).to_contain_text("limited")

    for path, name in (
        ("/app/settings/chats", "24-chats"),
        ("/app/settings/notifications", "25-notifications"),
        ("/privacy", "26-privacy"),
        ("/terms", "27-terms"),
    ):
        page.goto(path)
        check(page, artifacts, name)
    page.close()
