"""The browser toolset through real turns: Chromium drives the suite's own sites as the fake model asks,
each action keeps a screenshot that only the agent's org can see, the egress guard holds for redirects,
and two orgs' browsers never share cookies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.browser.models import Screenshot
from hutch.browser.pool import BrowserPool
from hutch.settings import Settings
from tests.browser.conftest import call, chat, new_agent, tool_results
from tests.browser.site import REPORT, PrivateService, TestSite
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.web.test_dashboard import log_in

pytestmark = pytest.mark.usefixtures("browsing")


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Clerks Inc")


@pytest.fixture
async def stranger(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Elsewhere Ltd")


async def test_an_agent_signs_in_with_the_browser_and_every_step_has_a_screenshot_only_its_org_sees(
    client: AsyncClient,
    owner: Account,
    stranger: Account,
    fake_llm: FakeLLMServer,
    site: TestSite,
    session: AsyncSession,
    settings: Settings,
) -> None:
    agent = await new_agent(client, owner)
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/login"),
        call("browser_type", element=1, text="ada"),
        call("browser_type", element=2, text="open sesame"),
        call("browser_click", element=3),
        ScriptedReply(content="Signed in: the balance is 42 coins."),
    )

    answer = await chat(client, owner, agent, "Sign in to the shop as ada and tell me my balance")

    assert answer["message"]["content"] == "Signed in: the balance is 42 coins."
    assert site.state.received == [("/login", {"username": "ada", "password": "open sesame"})]
    results = tool_results(fake_llm)
    assert '[1] text field "Username" name=username' in results[0]
    assert "Welcome, ada" in results[3] and "42 coins" in results[3]
    assert "open sesame" not in "".join(results)  # a password field reads "(filled)", not its value
    assert "image_url" not in json.dumps(fake_llm.requests[-1].body)  # not a computer-use model: text only

    listed = await client.get(
        f"/api/v1/agents/{agent['id']}/conversations/{answer['conversation_id']}/messages",
        headers=owner.headers,
    )
    calls = listed.json()["items"][-1]["tool_calls"]
    assert [c["name"] for c in calls] == ["browser_open", "browser_type", "browser_type", "browser_click"]
    assert calls[1]["arguments"] == {"element": 1, "text": "ada"}
    assert "Welcome, ada" in calls[3]["result"]
    urls = [c["screenshot_url"] for c in calls]
    assert len(set(urls)) == 4

    inbox = await client.get(f"/api/v1/conversations/{answer['conversation_id']}", headers=owner.headers)
    assert [c.get("screenshot_url") for c in inbox.json()["messages"][-1]["tool_calls"]] == urls

    image = await client.get(urls[3], headers=owner.headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff" and len(image.content) > 2000
    assert (await client.get(urls[3], headers=stranger.headers)).status_code == 404
    assert (await client.get(urls[3])).status_code == 401

    await log_in(client, owner.user.email)
    page = await client.get(f"/app/inbox/{answer['conversation_id']}")
    assert page.text.count('<img src="/app/screenshots/shot_') == 4

    shots = (await session.scalars(select(Screenshot).where(Screenshot.agent_id == agent["id"]))).all()
    assert sorted(s.action for s in shots) == ["click", "open", "type", "type"]
    stored = settings.resolved_data_dir / "screenshots" / shots[0].storage_key
    assert Path(stored).read_bytes()[:3] == b"\xff\xd8\xff"


async def test_a_redirect_to_a_private_address_is_refused_and_never_reached(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    site: TestSite,
    private_service: PrivateService,
) -> None:
    site.state.private_target = f"{private_service.base_url}/secret"
    agent = await new_agent(client, owner)
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/away"),
        call("browser_open", url=f"{private_service.base_url}/secret"),
        ScriptedReply(content="That page is not reachable."),
    )

    await chat(client, owner, agent, "Open the away page")

    after_redirect, direct = tool_results(fake_llm)
    assert "refused: 127.0.0.2 is a loopback address" in after_redirect
    assert "refused" in direct and "internal credentials" not in after_redirect + direct
    assert private_service.hits == []


async def test_two_orgs_browsers_never_share_cookies_but_a_conversation_keeps_its_own(
    client: AsyncClient,
    owner: Account,
    stranger: Account,
    fake_llm: FakeLLMServer,
    site: TestSite,
) -> None:
    ours, theirs = await new_agent(client, owner), await new_agent(client, stranger)
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/remember?v=alpha"), ScriptedReply(content="ok")
    )
    first = await chat(client, owner, ours, "Remember alpha")

    fake_llm.script(call("browser_open", url=f"{site.base_url}/whoami"), ScriptedReply(content="ok"))
    await chat(client, stranger, theirs, "Who am I?")
    assert "Cookie who=nobody" in tool_results(fake_llm)[0]

    fake_llm.script(call("browser_open", url=f"{site.base_url}/whoami"), ScriptedReply(content="ok"))
    await chat(client, owner, ours, "Who am I?", first["conversation_id"])
    assert "Cookie who=alpha" in tool_results(fake_llm)[0]


async def test_a_downloaded_file_is_kept_with_the_answer_and_read_to_the_agent(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, site: TestSite
) -> None:
    agent = await new_agent(client, owner)
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/files"),
        call("browser_download", element=1),
        ScriptedReply(content="Revenue grew 12 percent."),
    )

    answer = await chat(client, owner, agent, "Get the quarterly report")

    assert "Revenue grew 12 percent." in tool_results(fake_llm)[1]
    inbox = await client.get(f"/api/v1/conversations/{answer['conversation_id']}", headers=owner.headers)
    files = inbox.json()["messages"][-1]["attachments"]
    assert [(f["filename"], f["size_bytes"]) for f in files] == [("report.txt", len(REPORT))]
    downloaded = await client.get(files[0]["url"], headers=owner.headers)
    assert downloaded.content == REPORT


async def test_a_plan_without_the_browser_offers_no_browser_tools(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner, ["browser", "current_time"])
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="no-browser"))
    await session.commit()
    fake_llm.script(ScriptedReply(content="I cannot browse."))

    await chat(client, owner, agent, "Open example.org")

    offered = [t["function"]["name"] for t in fake_llm.requests[-1].body.get("tools", [])]
    assert offered == ["current_time"]


async def test_a_plan_without_the_browser_refuses_it_at_setup_and_changes_nothing(
    client: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner, ["current_time"])
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="no-browser"))
    await session.commit()

    refused = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"tools": ["browser", "current_time"]}, headers=owner.headers
    )
    assert refused.status_code == 402 and "does not include the browser" in refused.json()["detail"]
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Clicker", "model": "openai/gpt-4o", "tools": ["browser"]},
        headers=owner.headers,
    )
    assert created.status_code == 402
    kept = await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    assert kept.json()["tools"] == ["current_time"]


async def test_an_org_past_its_plans_browsers_at_once_is_told_so(
    client: AsyncClient,
    owner: Account,
    fake_llm: FakeLLMServer,
    site: TestSite,
    session: AsyncSession,
    browsing: BrowserPool,
) -> None:
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="one-browser"))
    await session.commit()
    first, second = await new_agent(client, owner), await new_agent(client, owner)
    fake_llm.script(call("browser_open", url=f"{site.base_url}/whoami"), ScriptedReply(content="ok"))
    await chat(client, owner, first, "one")
    fake_llm.script(call("browser_open", url=f"{site.base_url}/whoami"), ScriptedReply(content="ok"))
    await chat(client, owner, second, "two")  # a second browser while the first is open

    assert "allows 1 browser(s) at once" in tool_results(fake_llm)[0]
    assert browsing.of_org(owner.org.id) == 1


async def test_a_computer_use_model_sees_the_screen_after_each_action(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer, site: TestSite
) -> None:
    answer = await client.post(
        "/api/v1/agents",
        json={"name": "Looker", "model": "anthropic/claude-sonnet-4-5", "tools": ["browser"]},
        headers=owner.headers,
    )
    agent = answer.json()
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("browser_open", {"url": f"{site.base_url}/login"})]),
        AnthropicReply(content="I see a sign-in form."),
    )

    reply = await chat(client, owner, agent, "What is on the login page?")

    assert reply["message"]["content"] == "I see a sign-in form."
    after_action = fake_anthropic.requests[-1].body["messages"][-1]["content"]
    result = next(b for b in after_action if b["type"] == "tool_result")
    assert "[1] text field" in json.dumps(result["content"])  # the page as text, as for every model
    images = [b for b in after_action if b["type"] == "image"]
    assert [i["source"]["media_type"] for i in images] == ["image/jpeg"]
    assert base64.b64decode(images[0]["source"]["data"])[:3] == b"\xff\xd8\xff"
