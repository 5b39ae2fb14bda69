"""Computer-use models drive the same browser through Anthropic's computer tool: the model is told the
screen's size, clicks at pixel coordinates and types, each action keeps a screenshot like the text tools'
do, and the screenshot is what the model gets back. Other models keep the text toolset."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.models import Screenshot
from hutch.browser.pool import BrowserActionFailed, BrowserPool
from hutch.settings import Settings
from tests.browser.conftest import chat
from tests.browser.site import SIGNIN_FIELDS, TestSite
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse, betas_of

pytestmark = pytest.mark.usefixtures("browsing")

TEXT_TOOLS = [
    "browser_open",
    "browser_read",
    "browser_click",
    "browser_type",
    "browser_select",
    "browser_scroll",
    "browser_back",
    "browser_screenshot",
    "browser_download",
]


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Pointers Ltd")


async def new_agent(client: AsyncClient, owner: Account, model: str) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/agents",
        json={"name": "Looker", "model": model, "tools": ["browser"]},
        headers=owner.headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def computer(action: str, **arguments: Any) -> AnthropicReply:
    return AnthropicReply(tool_calls=[ToolUse("computer", {"action": action, **arguments})])


def image_of(result: dict[str, Any]) -> bytes:
    """The one image a tool result carries (base64 JPEG, as the API takes it)."""
    images = [part for part in result["content"] if part["type"] == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/jpeg"
    return base64.b64decode(images[0]["source"]["data"])


def text_of(result: dict[str, Any]) -> str:
    return "".join(part["text"] for part in result["content"] if part["type"] == "text")


async def test_a_computer_use_model_signs_in_by_clicking_and_typing_on_the_screen(
    client: AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    site: TestSite,
    session: AsyncSession,
) -> None:
    agent = await new_agent(client, owner, "anthropic/claude-sonnet-4-6")
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("browser_open", {"url": f"{site.base_url}/signin"})]),
        computer("screenshot"),
        computer("left_click", coordinate=list(SIGNIN_FIELDS["username"])),
        computer("type", text="ada"),
        computer("left_click", coordinate=list(SIGNIN_FIELDS["password"])),
        computer("type", text="open sesame"),
        computer("key", text="Return"),
        AnthropicReply(content="Signed in: the balance is 42 coins."),
    )

    answer = await chat(client, owner, agent, "Sign in to the shop as ada")

    assert answer["message"]["content"] == "Signed in: the balance is 42 coins."
    assert site.state.received == [("/login", {"username": "ada", "password": "open sesame"})]

    # The model was offered Anthropic's computer tool, sized as the browser's screen, under its beta,
    # with the text tools a screen cannot stand in for.
    first = fake_anthropic.requests[0]
    tools = {tool["name"]: tool for tool in first.body["tools"]}
    assert tools["computer"] == {
        "type": "computer_20250124",
        "name": "computer",
        "display_width_px": 1280,
        "display_height_px": 800,
    }
    assert sorted(tools) == sorted(
        ["computer", "browser_open", "browser_read", "browser_select", "browser_back", "browser_download"]
    )
    assert "computer-use-2025-01-24" in betas_of(first.headers)

    # Each action answered the model with the screen: an image in the tool result, and a line saying
    # what was done on which page.
    results = [fake_anthropic.tool_results(i)[0] for i in range(2, 8)]
    screens = [image_of(result) for result in results]
    assert all(screen[:3] == b"\xff\xd8\xff" and len(screen) > 2000 for screen in screens)
    assert len(set(screens)) >= 3  # the fields filling in, then the account page, show
    assert "Screenshot taken." in text_of(results[0]) and "/signin" in text_of(results[0])
    assert "Clicked at (250, 120)." in text_of(results[1])
    assert "Typed 3 character(s)." in text_of(results[2])
    assert "Pressed Return." in text_of(results[5]) and "Address: " + site.base_url + "/account" in text_of(
        results[5]
    )
    assert "open sesame" not in "".join(text_of(r) for r in results)

    # Every action kept its screenshot, on the message's tool calls as for the text tools.
    listed = await client.get(
        f"/api/v1/agents/{agent['id']}/conversations/{answer['conversation_id']}/messages",
        headers=owner.headers,
    )
    calls = listed.json()["items"][-1]["tool_calls"]
    assert [c["name"] for c in calls] == ["browser_open", *["computer"] * 6]
    assert calls[2]["arguments"] == {"action": "left_click", "coordinate": [250, 120]}
    assert calls[6]["result"].startswith("Pressed Return.")
    urls = [c["screenshot_url"] for c in calls]
    assert len(set(urls)) == 7
    image = await client.get(urls[6], headers=owner.headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == screens[5]  # the screen the model saw is the one kept

    shots = (
        await session.scalars(
            select(Screenshot).where(Screenshot.agent_id == agent["id"]).order_by(Screenshot.created_at)
        )
    ).all()
    assert [s.action for s in shots] == [
        "open",
        "screenshot",
        "left_click",
        "type",
        "left_click",
        "type",
        "key",
    ]
    assert shots[-1].page_url == f"{site.base_url}/account"


async def test_a_model_not_marked_for_computer_use_keeps_the_text_toolset(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await new_agent(client, owner, "anthropic/claude-haiku-4-5")
    fake_anthropic.script(AnthropicReply(content="Nothing to open."))

    await chat(client, owner, agent, "Anything?")

    sent = fake_anthropic.requests[-1]
    assert [tool["name"] for tool in sent.body["tools"]] == TEXT_TOOLS
    assert all("type" not in tool or tool["type"] == "custom" for tool in sent.body["tools"])
    assert not any(beta.startswith("computer-use") for beta in betas_of(sent.headers))


async def test_a_computer_use_model_with_a_fallback_that_is_not_keeps_the_text_toolset(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer
) -> None:
    agent = await new_agent(client, owner, "anthropic/claude-sonnet-4-6")
    patched = await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"fallback_model": "openai/gpt-4o"}, headers=owner.headers
    )
    assert patched.status_code == 200, patched.text
    fake_anthropic.script(AnthropicReply(content="Nothing to open."))

    await chat(client, owner, agent, "Anything?")

    assert [tool["name"] for tool in fake_anthropic.requests[-1].body["tools"]] == TEXT_TOOLS


async def test_pointer_actions_reach_the_page_at_their_coordinates(pool: BrowserPool, site: TestSite) -> None:
    session = await pool.session("test:pointer", "org_pointer")
    try:
        await session.run(lambda: session.navigate(f"{site.base_url}/pointer"))
        button = SIGNIN_FIELDS["button"]

        await session.run(lambda: session.pointer_click(*button))
        await session.run(lambda: session.pointer_click(*button, clicks=2))
        await session.run(lambda: session.pointer_click(*button, button="right"))
        pressed = await session.run(lambda: session.keyboard_press("ctrl+k"))
        assert "click click click dblclick contextmenu ctrl+k" in pressed.reading.text

        scrolled = await session.run(lambda: session.pointer_scroll(640, 400, "down", 5))
        assert scrolled.reading.title == "Pointer at 500"
        assert session.cursor == (640, 400)

        with pytest.raises(
            BrowserActionFailed, match=r"^\(1280, 10\) is off the screen, which is 1280x800\.$"
        ):
            await session.run(lambda: session.pointer_click(1280, 10))
    finally:
        await pool.close_session("test:pointer")
