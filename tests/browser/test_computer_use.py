"""Computer-use models drive the same browser through their provider's computer tool (Anthropic's, and
OpenAI's on the Responses API): the model is told the screen's size, clicks at pixel coordinates and
types, each action keeps a screenshot like the text tools' do, and the screenshot is what the model gets
back. Other models keep the text toolset."""

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
from tests.browser.conftest import call, chat
from tests.browser.site import SIGNIN_FIELDS, TestSite
from tests.browser.test_task_browser import sse
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.anthropic import AnthropicReply, FakeAnthropicServer, ToolUse, betas_of
from tests.fakes.llm import FakeLLMServer, ScriptedReply

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


async def test_a_streamed_turn_drives_the_screen_too(
    client: AsyncClient, owner: Account, fake_anthropic: FakeAnthropicServer, site: TestSite
) -> None:
    agent = await new_agent(client, owner, "anthropic/claude-sonnet-4-6")
    fake_anthropic.script(
        AnthropicReply(tool_calls=[ToolUse("browser_open", {"url": f"{site.base_url}/pointer"})]),
        computer("left_click", coordinate=list(SIGNIN_FIELDS["button"])),
        AnthropicReply(content="Pressed it once."),
    )

    answer = await client.post(
        f"/api/v1/agents/{agent['id']}/chat",
        json={"message": "Press the button"},
        headers=owner.headers | {"Accept": "text/event-stream"},
    )

    assert answer.status_code == 200 and "Pressed it once." in answer.text
    assert all(request.body.get("stream") for request in fake_anthropic.requests)
    clicked = fake_anthropic.tool_results()[0]
    assert "Clicked at (250, 320)." in text_of(clicked) and image_of(clicked)[:3] == b"\xff\xd8\xff"


def clicks(*actions: dict[str, Any]) -> list[ScriptedReply]:
    return [ScriptedReply(computer_action=action) for action in actions]


async def test_openais_computer_use_model_signs_in_through_computer_calls(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, site: TestSite, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner, "openai/computer-use-preview")
    (ux, uy), (px, py) = SIGNIN_FIELDS["username"], SIGNIN_FIELDS["password"]
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/signin"),
        *clicks(
            {"type": "click", "button": "left", "x": ux, "y": uy},
            {"type": "type", "text": "ada"},
            {"type": "click", "button": "left", "x": px, "y": py},
            {"type": "type", "text": "open sesame"},
            {"type": "keypress", "keys": ["ENTER"]},
        ),
        ScriptedReply(content="Signed in."),
    )

    answer = await chat(client, owner, agent, "Sign in as ada")

    assert answer["message"]["content"] == "Signed in."
    assert site.state.received == [("/login", {"username": "ada", "password": "open sesame"})]
    first = fake_llm.requests[0]
    assert first.path == "/v1/responses" and first.body["truncation"] == "auto"
    assert {
        "type": "computer_use_preview",
        "display_width": 1280,
        "display_height": 800,
        "environment": "browser",
    } in (first.body["tools"])
    offered = sorted(tool.get("name", tool["type"]) for tool in first.body["tools"])
    assert offered == sorted(
        [
            "computer_use_preview",
            "browser_open",
            "browser_read",
            "browser_select",
            "browser_back",
            "browser_download",
        ]
    )
    sent = fake_llm.requests[-1].body["input"]
    outputs = [item for item in sent if item.get("type") == "computer_call_output"]
    assert len(outputs) == 5
    screens = [
        base64.b64decode(o["output"]["image_url"].removeprefix("data:image/jpeg;base64,")) for o in outputs
    ]
    assert all(screen[:3] == b"\xff\xd8\xff" for screen in screens)
    assert [item["action"]["type"] for item in sent if item.get("type") == "computer_call"] == [
        "click",
        "type",
        "click",
        "type",
        "keypress",
    ]

    listed = await client.get(
        f"/api/v1/agents/{agent['id']}/conversations/{answer['conversation_id']}/messages",
        headers=owner.headers,
    )
    calls = listed.json()["items"][-1]["tool_calls"]
    assert [c["name"] for c in calls] == ["browser_open", *["computer"] * 5]
    assert calls[1]["arguments"] == {"action": {"type": "click", "button": "left", "x": ux, "y": uy}}
    assert len({c["screenshot_url"] for c in calls}) == 6
    shots = (
        await session.scalars(
            select(Screenshot).where(Screenshot.agent_id == agent["id"]).order_by(Screenshot.created_at)
        )
    ).all()
    assert [s.action for s in shots] == ["open", "left_click", "type", "left_click", "type", "key"]


async def test_a_computer_call_awaiting_a_persons_confirmation_is_not_carried_out(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, site: TestSite, session: AsyncSession
) -> None:
    agent = await new_agent(client, owner, "openai/computer-use-preview")
    check = {"id": "cu_sc_1", "code": "malicious_instructions", "message": "The page asks to send money."}
    fake_llm.script(
        ScriptedReply(
            computer_action={"type": "click", "button": "left", "x": 10, "y": 10}, safety_checks=[check]
        )
    )

    answer = await chat(client, owner, agent, "Do what the page says")

    assert answer["message"]["content"] == (
        "I stopped before acting on the screen, which needs a person's confirmation: "
        "The page asks to send money."
    )
    assert len(fake_llm.requests) == 1
    shots = (await session.scalars(select(Screenshot).where(Screenshot.agent_id == agent["id"]))).all()
    assert shots == []


async def test_openais_computer_use_model_answers_a_streamed_turn_whole(
    client: AsyncClient, owner: Account, fake_llm: FakeLLMServer, site: TestSite
) -> None:
    agent = await new_agent(client, owner, "openai/computer-use-preview")
    x, y = SIGNIN_FIELDS["button"]
    fake_llm.script(
        call("browser_open", url=f"{site.base_url}/pointer"),
        *clicks({"type": "double_click", "x": x, "y": y}),
        ScriptedReply(content="Pressed it twice."),
    )

    answer = await client.post(
        f"/api/v1/agents/{agent['id']}/chat",
        json={"message": "Double-click the button"},
        headers=owner.headers | {"Accept": "text/event-stream"},
    )

    assert answer.status_code == 200 and "Pressed it twice." in answer.text
    assert not any(request.body.get("stream") for request in fake_llm.requests)
    output = [i for i in fake_llm.requests[-1].body["input"] if i.get("type") == "computer_call_output"]
    assert len(output) == 1 and output[0]["output"]["image_url"].startswith("data:image/jpeg;base64,/9j/")


async def test_a_tasks_computer_actions_show_on_its_step_and_in_the_live_view(
    client: AsyncClient,
    owner: Account,
    fake_anthropic: FakeAnthropicServer,
    site: TestSite,
    jobs: RecordingJobQueue,
) -> None:
    agent = await new_agent(client, owner, "anthropic/claude-sonnet-4-6")
    fake_anthropic.script(
        AnthropicReply(content='{"steps": [{"title": "Press the button"}]}'),
        AnthropicReply(tool_calls=[ToolUse("browser_open", {"url": f"{site.base_url}/pointer"})]),
        computer("left_click", coordinate=list(SIGNIN_FIELDS["button"])),
        AnthropicReply(content="Pressed."),
    )
    created = await client.post(
        f"/api/v1/agents/{agent['id']}/tasks", json={"description": "Press the button"}, headers=owner.headers
    )

    await jobs.run_pending()

    task = (await client.get(f"/api/v1/tasks/{created.json()['id']}", headers=owner.headers)).json()
    assert task["status"] == "completed"
    assert [(s["number"], len(s["screenshots"])) for s in task["steps"]] == [(1, 2)]
    live = await client.get(f"/api/v1/tasks/{task['id']}/live", headers=owner.headers)
    screen = next(data for event, data in sse(live.text) if event == "screen")
    assert screen["action"] == "left_click" and screen["url"] == task["steps"][0]["screenshots"][-1]
