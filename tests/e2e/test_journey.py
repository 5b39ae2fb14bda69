"""The main journey in a real browser: sign up, onboard, chat with the demo model, create an API key, upgrade
through Stripe Checkout, look at the admin console, suspend and reinstate the organisation, and download
your data — each page checked with axe-core and photographed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveHutch

PHONE = {"width": 390, "height": 844}
# The element reaching furthest right, to name what overflows a narrow screen.
WIDEST = """[...document.querySelectorAll('body *')]
  .map(e => [e.getBoundingClientRect().right, e.tagName + '.' + e.className + '#' + e.id])
  .sort((a, b) => b[0] - a[0]).slice(0, 3)"""
axe = Axe()
PUBLIC_PAGES = [
    ("/pricing", "00-pricing"),
    ("/login", "00-login"),
    ("/forgot-password", "00-forgot"),
    ("/reset-password?token=x", "00-reset"),
    ("/verify-email?token=x", "00-verify"),
]
ADMIN_PAGES = ("users", "orgs", "agents", "alerts", "deletions", "audit-log", "margins", "creator-accounts",
               "runtime-hosts")  # fmt: skip
ACCOUNT_PAGES = [
    ("/app/usage", "09-usage"),
    ("/app/team", "10-team"),
    ("/app/manager", "11-manager"),
    ("/app/agents", "11-agents"),
    ("/app/agents/agt_none/chat", "11-not-found"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def check(page: Page, artifacts: Path, name: str) -> None:
    """No serious or critical accessibility violation; a screenshot for the record."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    results = axe.run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: {serious}"


def test_sign_up_to_a_reply_a_key_an_upgrade_and_the_admin_console(
    browser: Browser, live_hutch: LiveHutch, artifacts: Path
) -> None:
    page = browser.new_page(base_url=live_hutch.base_url)
    for path, name in PUBLIC_PAGES:
        page.goto(path)
        check(page, artifacts, name)
    page.goto("/")
    check(page, artifacts, "01-landing")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()  # the first stop is "Skip to content"
    page.get_by_role("link", name="Sign up").first.click()
    check(page, artifacts, "02-signup")
    page.get_by_label("Email").fill("founder@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#password-error")).to_contain_text("8")  # the error sits next to its field
    page.get_by_label("Password").fill("a-long-enough-password")
    page.get_by_label("Company").fill("Acme Robots")
    page.get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(re.compile(r"/app/onboarding"))
    check(page, artifacts, "03-onboarding")
    page.get_by_label("Just try it here first").check()
    page.get_by_label("Name").fill("Ada")
    page.get_by_role("button", name="Create my assistant").click()
    expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/chat"))
    page.get_by_label("Message").fill("Hello there")
    page.get_by_role("button", name="Send").click()
    reply = page.locator(".msg.assistant").last
    expect(reply).to_contain_text("[Demo — no AI] You said: Hello there")
    expect(reply.locator(".meta")).to_contain_text("out · $")  # tokens and cost of the message
    check(page, artifacts, "04-chat")
    agent_url = page.url.split("?")[0].removesuffix("/chat")
    for tab in ("settings", "knowledge", "channels", "runtime", "tasks"):
        page.goto(f"{agent_url}/{tab}")
        check(page, artifacts, f"05-agent-{tab}")

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Label").fill("my integration")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("hk_")
    expect(page.get_by_text("shown only this once")).to_be_visible()
    check(page, artifacts, "06-api-key")
    models = httpx.get(f"{live_hutch.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert models.status_code == 200 and "ada" in models.text.lower()  # the key works, and sees the agent
    page.reload()
    assert key not in page.content()  # never shown again

    page.get_by_role("link", name="Billing").click()
    check(page, artifacts, "07-billing")
    page.get_by_role("button", name="Upgrade to Starter").click()
    page.wait_for_url(re.compile(re.escape(live_hutch.stripe.base_url) + r"/c/pay/cs_\w+"))
    session_id = page.url.rsplit("/", 1)[1]
    live_hutch.deliver(live_hutch.stripe.complete(session_id))  # the customer paid; Stripe tells Hutch
    page.goto("/app/billing")
    expect(page.locator(".stat").first).to_contain_text("Starter")
    check(page, artifacts, "08-billing-upgraded")

    for path, name in ACCOUNT_PAGES:
        page.goto(path)
        check(page, artifacts, name)
    page.get_by_role("link", name="Admin console").click()  # the first user of a deployment is its admin
    expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
    expect(page.locator(".stat").filter(has_text="Organisations")).to_contain_text("1")
    check(page, artifacts, "12-admin-overview")
    for path in ADMIN_PAGES:
        page.goto(f"/admin/{path}")
        check(page, artifacts, f"13-admin-{path}")

    # The admin suspends the organisation and reinstates it, each after a page that asks first.
    page.goto("/admin/orgs")
    page.get_by_role("link", name="Acme Robots").click()
    check(page, artifacts, "14-admin-org")
    page.get_by_role("link", name="Suspend").click()
    check(page, artifacts, "14-admin-suspend")
    page.get_by_label("Reason").fill("Unpaid invoices")
    page.get_by_role("button", name="Suspend organisation").click()
    expect(page.locator(".notice.warn")).to_contain_text("Unpaid invoices")
    check(page, artifacts, "14-admin-suspended")
    page.get_by_role("link", name="Reinstate").click()
    page.get_by_role("button", name="Reinstate organisation").click()
    expect(page.get_by_role("status")).to_contain_text("Reinstated.")
    page.goto("/admin/audit-log?action=org_suspended")
    expect(page.locator("table")).to_contain_text("Unpaid invoices")
    check(page, artifacts, "14-admin-audit-log")

    # The customer asks for their data, sees when it is ready, and downloads it.
    page.get_by_role("link", name="Your account").click()
    check(page, artifacts, "15-account")
    page.get_by_role("button", name="Request an export").click()
    expect(page.get_by_role("status")).to_contain_text("being prepared")
    download_link = page.get_by_role("link", name=re.compile(r"^Download"))
    for _ in range(60):  # the worker builds it in a moment
        if download_link.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    check(page, artifacts, "15-account-export-ready")
    with page.expect_download() as download:
        download_link.first.click()
    assert download.value.suggested_filename.startswith("hutch-export-exp_")
    page.get_by_role("link", name="Delete my account").click()
    expect(page.locator("#main li strong")).to_have_text("Acme Robots")  # it goes: they are its last owner
    check(page, artifacts, "15-account-delete")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.close()


def test_pages_fit_a_phone(browser: Browser, live_hutch: LiveHutch, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, base_url=live_hutch.base_url)
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill("phone@example.com")
    page.get_by_label("Password").fill("a-long-enough-password")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("button", name="Create my assistant").click()
    expect(page).to_have_url(re.compile(r"/app/agents/agt_\w+/chat"))
    agent = "/" + page.url.split("?")[0].removesuffix("/chat").split("/", 3)[3]
    for path in ("/", "/pricing", "/app/agents", f"{agent}/chat", f"{agent}/settings", f"{agent}/channels",
                 "/app/billing", "/app/api-keys", "/app/usage", "/app/team"):  # fmt: skip
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        widest = page.evaluate(WIDEST)
        assert width <= PHONE["width"], f"{path} is {width}px wide on a 390px phone; widest: {widest}"
        shot = re.sub(r"/agt_\w+", "", path).replace("/", "-")
        page.screenshot(path=str(artifacts / f"phone{shot}.png"), full_page=True)
    context.close()
