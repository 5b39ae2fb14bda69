"""The brand in a real browser: every page a customer or an end user opens (landing, pricing, sign-up, log in,
the dashboard's pages, a customer's site with the chat widget) shows the operator's name, logo and colour,
and no "Hutch" anywhere in its visible text or title once the powered-by line is off.

One branded deployment and one Chromium for the whole module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from hutch.settings import Settings
from tests.conftest import PostgresServer
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live_server import serve_in_thread
from tests.web.test_brand import write_brand

NAME = "Acme Assist"
GREEN = "rgb(10, 125, 90)"  # the brand's #0a7d5a
SHOP = "http://localhost:8089"  # a customer's site with the widget, answered by the test
PASSWORD = "a-long-password"
# "Hutch" as a word people read; technical names (the X-Hutch-Signature header, data-hutch-widget) stay.
PRODUCT_WORD = re.compile(r"(?<![\w-])Hutch(?![\w-])")


@dataclass(frozen=True)
class BrandedHutch:
    base_url: str


@pytest.fixture(scope="module")
def branded_hutch(
    postgres: PostgresServer,
    migrated_template: str,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BrandedHutch]:
    """Hutch with a brand file, on a database of its own, answering real HTTP from a thread of this process
    (a `hutch serve` of its own would take several seconds more to start)."""
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    # Acme Assist, #0a7d5a, a logo in its assets, powered_by = false; the file overrides the name setting.
    brand_file = write_brand(tmp_path_factory.mktemp("brand"))
    with serve_in_thread(
        postgres, migrated_template, settings, "hutch_brand", brand_file=brand_file, brand_name="Overridden"
    ) as served:
        yield BrandedHutch(served.base_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # The customer's site is answered by the test (a public page to Chromium); Hutch runs on loopback.
        local = "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, local])
        yield launched
        launched.close()


# What a person sees of the brand on a page, read in one round trip (the page's "load" waited for images).
SEEN = """() => {
  const logo = document.querySelector(".brand img.logo");
  const dark = document.querySelector(".brand picture source");
  const root = getComputedStyle(document.documentElement);
  return {
    title: document.title,
    text: document.body.innerText,
    logo: logo && logo.getAttribute("src"),
    logoWidth: logo && logo.complete ? logo.naturalWidth : 0,
    dark: dark && dark.getAttribute("srcset"),
    icon: document.querySelector("link[rel=icon]").getAttribute("href"),
    primary: root.getPropertyValue("--brand-primary").trim(),
    nameColour: getComputedStyle(document.querySelector(".brand")).color,
  };
}"""


def check_branded(page: Page, base: str, path: str) -> None:
    """The page at ``path`` answers, wears the brand, and says "Hutch" nowhere a person reads."""
    response = page.goto(f"{base}{path}")
    assert response is not None and response.ok, (path, response and response.status)
    seen = page.evaluate(SEEN)
    assert NAME in seen["title"] and "Hutch" not in seen["title"], (path, seen["title"])
    text = seen["text"]
    assert NAME in text, path
    leftover = PRODUCT_WORD.search(text)
    assert leftover is None, (path, text[max(0, leftover.start() - 80) : leftover.end() + 80])
    assert "Powered by" not in text, path  # turned off in the brand file
    assert (seen["logo"], seen["logoWidth"]) == ("/brand/logo.svg", 80), path  # served from the assets
    assert seen["dark"] == "https://cdn.acme.example/logo-dark.svg", path
    assert seen["icon"] == "/brand/favicon.svg", path
    assert (seen["primary"], seen["nameColour"]) == ("#0a7d5a", GREEN), path


# The deployment first: it then stops after Chromium, which holds no open connection to wait for by then.
def test_every_customer_page_wears_the_brand(branded_hutch: BrandedHutch, browser: Browser) -> None:
    base = branded_hutch.base_url
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", "/pricing", "/login", "/signup", "/privacy", "/terms", "/pages/about"):
        check_branded(page, base, path)
    expect(page.get_by_role("link", name="About Acme")).to_be_visible()  # the extra page is in the footer
    page.goto(f"{base}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Acme's shop assistants"  # the landing file
    start = page.get_by_role("link", name="Start free")
    assert start.evaluate("(el) => getComputedStyle(el).backgroundColor") == GREEN

    # Signing up through the page leads into the dashboard, every page of which wears the brand too.
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company").fill("Lids & Co")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/app/onboarding"))
    token = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": "owner@acme.example", "password": PASSWORD}
    ).json()["access_token"]
    owner = {"Authorization": f"Bearer {token}"}
    agent = httpx.post(
        f"{base}/api/v1/agents", json={"name": "Lid helper", "audience": "public"}, headers=owner
    )
    agent_id = agent.json()["id"]
    widget = httpx.post(
        f"{base}/api/v1/agents/{agent_id}/channels/webchat", json={"allowed_origins": [SHOP]}, headers=owner
    )
    assert widget.status_code == 201, widget.text
    dashboard = [
        "/app/onboarding",
        "/app/agents",
        f"/app/agents/{agent_id}",
        f"/app/agents/{agent_id}/channels",
        f"/app/agents/{agent_id}/knowledge",
        f"/app/agents/{agent_id}/chat",
        "/app/inbox",
        "/app/manager",
        "/app/tools",
        "/app/usage",
        "/app/billing",
        "/app/api-keys",
        "/app/team",
        "/app/settings/chats",
        "/app/settings/notifications",
        "/app/account",
        "/admin",
    ]
    for path in dashboard:
        check_branded(page, base, path)
    context.close()

    # An end user on the customer's site: the widget in the brand's colour, and no "Hutch" in it.
    script = f'<script src="{base}/widget.js" data-hutch-widget="{widget.json()["token"]}"></script>'
    shop_page = f"<title>Lids</title><h1>Lids</h1>{script}"

    def shop(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=shop_page)

    visitor = browser.new_page()
    visitor.route(f"{SHOP}/", shop)
    visitor.goto(f"{SHOP}/")
    visitor.get_by_role("button", name="Open chat").click()
    expect(visitor.get_by_text("Lid helper", exact=True)).to_be_visible()
    bubble = visitor.get_by_role("button", name="Open chat")
    expect(bubble).to_have_css("background-color", GREEN)
    shadow_text = visitor.evaluate("document.querySelector('[data-hutch-chat]').shadowRoot.textContent")
    assert "Hutch" not in shadow_text and "Powered by" not in shadow_text
    assert "Hutch" not in visitor.locator("body").inner_text()
    visitor.close()
