"""A person clicks "Sign in with <name>" in Chromium, signs in at the OpenID provider's own page and lands on
the dashboard: real HTTP, real redirects, real cookies (Hutch on uvicorn, the provider on its own port)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import async_playwright

from hutch.accounts.oidc_gateway import SsoProviders
from hutch.app import create_app
from hutch.settings import Settings
from tests.accounts.test_sso import person, sso_settings
from tests.conftest import PostgresServer, live_deployment
from tests.fakes.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


async def test_sign_in_with_the_provider_in_chromium_reaches_the_dashboard(
    postgres: PostgresServer, migrated_template: str, settings: Settings, issuer: str
) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's Chromium: apt-get install chromium")
    port = free_port()
    served = sso_settings(settings, issuer).model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    subject = person(issuer, "chris@example.com", name="Chris Lane")
    async with live_deployment(postgres, migrated_template, served) as live:
        live.resources.sso = SsoProviders.from_settings(served)
        server = uvicorn.Server(
            uvicorn.Config(create_app(resources=live.resources), port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.05)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{port}/login")
                await page.get_by_role("link", name="Sign in with Acme ID").click()
                await page.wait_for_url(f"{issuer}/oauth2/authorize?*")
                await page.fill("input[name=sub]", subject)
                await page.get_by_role("button", name="Authorize").click()
                await page.wait_for_url(f"http://127.0.0.1:{port}/app/onboarding*")
                assert await page.get_by_role("heading", level=1).count() >= 1
                cookies = {c["name"]: c for c in await page.context.cookies()}
                assert cookies["hutch_session"]["httpOnly"] and "hutch_sso" not in cookies
                await page.goto(f"http://127.0.0.1:{port}/app/account")
                assert "Acme ID (chris@example.com)" in await page.content()
                await browser.close()
        finally:
            server.should_exit = True
            await serving
