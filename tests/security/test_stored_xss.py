"""Stored XSS replayed: every text a customer or an end user controls that a page renders (agent names,
messages, document titles, people's and organisations' names) comes back escaped in the HTML, and an SVG
with a script is never served as an image a browser would run. Chromium then loads the rendered pages and
the payload's script never runs."""

from __future__ import annotations

import re

from httpx import AsyncClient
from playwright.async_api import async_playwright
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.models import Conversation, EndUser
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer

# Runs in any of the contexts a template might drop it into: element text, an attribute, a script string.
PAYLOAD = '<script>window.xss=1</script><img src=x onerror="window.xss=2">\'"><svg onload=window.xss=3>'
RAW = re.compile(r"<script>window\.xss|<img src=x onerror|<svg onload", re.IGNORECASE)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>window.xss=4</script><rect width='10' height='10'/></svg>"
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client: AsyncClient, account: Account) -> None:
    form = await client.get("/login")
    csrf = CSRF.search(form.text)
    assert csrf is not None
    answer = await client.post(
        "/login", data={"csrf": csrf.group(1), "email": account.user.email, "password": account.password}
    )
    assert answer.status_code == 303, answer.text


async def test_stored_xss(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    fake_llm: FakeLLMServer,
) -> None:
    owner = await create_account(session, settings, platform_admin=True, org_name=PAYLOAD[:100])
    headers = owner.headers
    assert (await client.patch("/api/v1/users/me", json={"name": PAYLOAD[:100]}, headers=headers)).is_success
    agent = (
        await client.post(
            "/api/v1/agents", json={"name": PAYLOAD[:100], "model": "openai/gpt-4o"}, headers=headers
        )
    ).json()
    agent_id = agent["id"]
    said = await client.post(f"/api/v1/agents/{agent_id}/chat", json={"message": PAYLOAD}, headers=headers)
    conversation = said.json()["conversation_id"]
    assert PAYLOAD in said.json()["message"]["content"]  # the fake model echoes it: the answer carries it too
    await client.post(
        f"/api/v1/agents/{agent_id}/documents", json={"title": PAYLOAD[:300], "content": "x"}, headers=headers
    )
    await jobs.run_pending()
    # An end user names themself (Telegram's first name and username): the inbox shows both
    stored = await session.get(Conversation, conversation)
    assert stored is not None
    await session.execute(
        update(EndUser)
        .where(EndUser.org_id == owner.org.id, EndUser.external_id == stored.end_user)
        .values(display_name=PAYLOAD[:200], username=PAYLOAD[:200])
    )
    await session.commit()

    # An SVG avatar is refused (only JPEG, PNG and WebP are recognised by their bytes) and nothing is served
    svg = await client.put(
        f"/api/v1/agents/{agent_id}/avatar", files={"file": ("a.svg", SVG, "image/svg+xml")}, headers=headers
    )
    assert svg.status_code == 415
    served = await client.get(f"/api/v1/agents/{agent_id}/avatar", headers=headers)
    assert served.status_code == 404 or "svg" not in served.headers.get("content-type", "")

    await sign_in(client, owner)
    pages = [
        "/app/agents",
        f"/app/agents/{agent_id}/chat",
        f"/app/agents/{agent_id}/knowledge",
        "/app/inbox",
        f"/app/inbox/{conversation}",
        "/app/team",
        f"/app/agents/{agent_id}/settings",
        "/app/account",
        "/admin/users",
        "/admin/orgs",
        "/admin/agents",
        f"/admin/orgs/{owner.org.id}",
    ]
    rendered: dict[str, str] = {}
    for path in pages:
        page = await client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        assert not RAW.search(page.text), f"{path} renders the payload unescaped"
        rendered[path] = page.text
    assert sum("&lt;script&gt;window.xss" in html for html in rendered.values()) >= 6  # the texts are shown

    # The browser's own verdict: the pages as rendered, loaded in Chromium; no payload runs
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            dialogs: list[str] = []

            async def ran(html: str) -> str:
                """What the page's scripts left in window.xss, loaded alone in a fresh tab."""
                tab = await browser.new_page()
                await tab.route("**/*", lambda route: route.abort())  # nothing from outside the page
                tab.on("dialog", lambda dialog: dialogs.append(dialog.message))
                await tab.set_content(html, wait_until="load")
                kind = str(await tab.evaluate("typeof window.xss"))
                await tab.close()
                return kind

            assert await ran(f"<p>{PAYLOAD}</p>") == "number"  # the check sees a payload that runs
            for path, html in rendered.items():
                assert await ran(html) == "undefined", path
            assert dialogs == []
        finally:
            await browser.close()
