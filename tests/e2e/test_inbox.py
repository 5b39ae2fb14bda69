"""The inbox in a real browser: finding a conversation, taking it over, replying, a new message from the
person arriving on the open page without a reload, and handing it back — each page checked with axe-core."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.clock import wait_for_a_fresh_minute
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveHutch
from tests.e2e.test_journey import check

EMAIL, PASSWORD = "inbox@example.com", "a-long-enough-password"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_take_over_reply_see_a_message_arrive_live_and_hand_back(
    browser: Browser, live_hutch: LiveHutch, artifacts: Path
) -> None:
    base = live_hutch.base_url
    page = browser.new_page(base_url=base)
    page.goto("/signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company").fill("Parcel Co")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_label("Name").fill("Shop")
    page.get_by_role("button", name="Create my assistant").click()
    expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/chat"))
    agent_id = page.url.split("?")[0].removesuffix("/chat").rsplit("/", 1)[1]

    # The person writes through the API (as any channel would bring their messages).
    token = httpx.post(f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    chat = f"{base}/api/v1/agents/{agent_id}/chat"
    said = httpx.post(chat, json={"message": "Where is my parcel?"}, headers=auth, timeout=30)
    assert said.status_code == 200, said.text

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox")
    page.get_by_label("Search the messages").fill('"my parcel"')
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status")).to_contain_text("1 found")
    check(page, artifacts, "40-inbox")

    page.get_by_role("link", name="Dashboard member").click()
    thread = page.locator("#thread")
    expect(thread).to_contain_text("Where is my parcel?")
    check(page, artifacts, "41-conversation")

    take_over = page.get_by_role("button", name="Take over")
    take_over.focus()
    page.keyboard.press("Enter")  # every action works from the keyboard
    expect(page.get_by_role("status")).to_contain_text("You hold this conversation")
    page.get_by_label("Your reply").fill("Grace from the team here: it ships today.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent")
    expect(thread).to_contain_text("Grace from the team here")
    check(page, artifacts, "42-taken-over")

    # A new message while the page is open: it joins the thread without a reload.
    expect(page.locator("#live-state")).to_contain_text("as they arrive")
    page.evaluate("window.stillTheSamePage = true")
    held = httpx.post(chat, json={"message": "Thank you, a real person!"}, headers=auth, timeout=30)
    assert held.status_code == 409, held.text  # the agent stays silent; the message is kept for the team
    expect(thread.locator("li").last).to_contain_text("Thank you, a real person!", timeout=5000)
    assert page.evaluate("window.stillTheSamePage") is True
    check(page, artifacts, "43-live-message")

    page.get_by_role("button", name="Hand back to the agent").click()
    expect(page.get_by_role("status")).to_contain_text("Handed back")
    expect(page.get_by_role("button", name="Take over")).to_be_visible()
    check(page, artifacts, "44-handed-back")
    answered = httpx.post(chat, json={"message": "One more question"}, headers=auth, timeout=30)
    assert answered.status_code == 200  # the agent answers again
    page.close()  # its live stream ends with it: stopping Hutch need not wait for it


def test_an_owner_sets_a_per_person_limit_sees_who_hit_it_and_blocks_then_unblocks_them(
    browser: Browser, live_hutch: LiveHutch, artifacts: Path
) -> None:
    base, email = live_hutch.base_url, "fair@example.com"
    page = browser.new_page(base_url=base)
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company").fill("Fair Co")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_label("Name").fill("Desk")
    page.get_by_role("button", name="Create my assistant").click()
    expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/chat"))
    agent_id = page.url.split("?")[0].removesuffix("/chat").rsplit("/", 1)[1]

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Messages a minute per person").fill("1")
    check(page, artifacts, "45-fair-use-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_label("Messages a minute per person")).to_have_value("1")

    # One person, named by an API caller's `user`, sends two messages in a minute: the second is refused.
    token = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    made = httpx.post(
        f"{base}/api/v1/api-keys",
        json={"label": "site", "scopes": ["chat"]},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    key = {"Authorization": f"Bearer {made.json()['key']}"}

    def ask() -> int:
        body = {"model": agent_id, "user": "bob", "messages": [{"role": "user", "content": "Hi"}]}
        return httpx.post(f"{base}/v1/chat/completions", json=body, headers=key, timeout=30).status_code

    time.sleep(wait_for_a_fresh_minute(5))  # the server counts minutes on real time
    assert [ask(), ask()] == [200, 429]

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Inbox").click()
    row = page.get_by_role("row").filter(has_text="api:bob")
    expect(row.get_by_text("limited")).to_be_visible()
    row.get_by_role("link", name="api:bob").click()
    expect(page.locator("#limited")).to_contain_text("went past 1 message a minute per person")
    page.get_by_role("button", name="Block api:bob").click()
    expect(page.get_by_text("blocked", exact=True)).to_be_visible()
    assert ask() == 403  # no answer, nothing counted
    page.get_by_role("button", name="Unblock api:bob").click()
    expect(page.get_by_role("button", name="Block api:bob")).to_be_visible()
    expect(page.get_by_text("blocked", exact=True)).to_have_count(0)
    page.close()
