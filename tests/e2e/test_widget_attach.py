"""The web chat widget's paperclip in a real browser: a visitor on the customer's site attaches a photo,
sends it, sees its thumbnail in the thread and the agent's answer, and finds it again after a reload."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect, sync_playwright

from hutch.turns.media import NO_VISION
from tests.channels.test_media import PNG
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveHutch

SHOP = "http://localhost:8089"  # the customer's site, answered by the test


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # The customer's page is answered by the test (a public page to Chromium), Hutch runs on loopback.
        local = "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, local])
        yield launched
        launched.close()


def test_a_visitor_attaches_a_photo_with_the_paperclip(browser: Browser, live_hutch: LiveHutch) -> None:
    base = live_hutch.base_url
    signed_up = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": "widget@example.com", "password": "a-long-password"}
    )
    assert signed_up.status_code == 201, signed_up.text
    owner = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
    agent = httpx.post(f"{base}/api/v1/agents", json={"name": "Shop", "audience": "public"}, headers=owner)
    created = httpx.post(
        f"{base}/api/v1/agents/{agent.json()['id']}/channels/webchat",
        json={"allowed_origins": [SHOP]},
        headers=owner,
    )
    token = created.json()["token"]
    page_html = f'<h1>Shop</h1><script src="{base}/widget.js" data-hutch-widget="{token}"></script>'

    def shop(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=page_html)

    page = browser.new_page()
    page.route(f"{SHOP}/", shop)
    page.goto(f"{SHOP}/")
    page.get_by_role("button", name="Open chat").click()
    with page.expect_file_chooser() as chosen:
        page.get_by_role("button", name="Attach a file").click()
    chosen.value.set_files({"name": "lid.png", "mimeType": "image/png", "buffer": PNG})
    expect(page.get_by_text("Attached: lid.png")).to_be_visible()
    page.get_by_label("Message").fill("Is it broken?")
    page.get_by_label("Message").press("Enter")
    expect(page.get_by_alt_text("Image sent: lid.png")).to_be_visible()
    expect(page.get_by_text(NO_VISION)).to_be_visible()  # the demo model does not read images
    expect(page.get_by_text("Attached: lid.png")).to_be_hidden()

    page.reload()
    page.get_by_role("button", name="Open chat").click()
    thumbnail = page.get_by_alt_text("Image sent: lid.png")
    expect(thumbnail).to_be_visible()
    src = thumbnail.get_attribute("src") or ""
    assert src.startswith(f"{base}/api/v1/widget/{token}/attachments/att_")
    assert page.evaluate("(img) => img.naturalWidth", thumbnail.element_handle()) == 1
