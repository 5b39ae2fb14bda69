"""The dashboard over HTTP as a browser without JavaScript uses it: forms, redirects, cookies, CSRF."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient, Response
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.agents.models import Agent
from hutch.app import create_app
from hutch.channels.models import Channel, ChannelLink, ChannelStatus, ChannelType
from hutch.core.ids import new_id
from hutch.db.engine import Database
from hutch.settings import Settings
from hutch.web.models import WebSession
from tests.conftest import asgi_client, build_test_resources
from tests.factories import DEFAULT_PASSWORD, create_account

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text) or re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_up(client: AsyncClient, email: str = "new@example.com") -> str:
    form = await client.get("/signup")
    response = await client.post(
        "/signup",
        data={"csrf": csrf_of(form), "email": email, "password": "long-enough-pw", "org_name": "Acme"},
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def log_in(client: AsyncClient, email: str, password: str = DEFAULT_PASSWORD) -> None:
    form = await client.get("/login")
    response = await client.post("/login", data={"csrf": csrf_of(form), "email": email, "password": password})
    assert response.status_code == 303, response.text


async def test_public_pages_explain_the_product_and_its_prices(client: AsyncClient) -> None:
    landing = await client.get("/")
    assert landing.status_code == 200 and "Sign up" in landing.text and "Telegram" in landing.text
    pricing = await client.get("/pricing")
    assert pricing.status_code == 200 and "Starter" in pricing.text and "/signup?plan=" in pricing.text


async def test_signup_onboarding_agent_and_a_reply(client: AsyncClient, session: AsyncSession) -> None:
    assert await sign_up(client) == "/app/onboarding"
    assert "hutch_session" in client.cookies
    onboarding = await client.get("/app/onboarding")
    assert onboarding.status_code == 200 and "Create my assistant" in onboarding.text
    created = await client.post(
        "/app/onboarding",
        data={
            "csrf": csrf_of(onboarding),
            "name": "Ada",
            "role": "support",
            "plan": "free",
            "channel": "chat",
        },
    )
    assert created.status_code == 303
    target = created.headers["location"]
    assert re.fullmatch(r"/app/agents/agt_\w+/chat\?welcome=1", target)
    chat = await client.get(target)
    assert chat.status_code == 200 and "Your assistant is ready" in chat.text
    agent_id = target.split("/")[3]
    sent = await client.post(f"/app/agents/{agent_id}/chat", data={"csrf": csrf_of(chat), "message": "Hello"})
    assert sent.status_code == 303
    page = await client.get(f"/app/agents/{agent_id}/chat")
    assert "Echo: Hello" in page.text and "in · 3 out" in page.text  # the reply, with its tokens and cost
    streamed = await client.post(
        f"/app/agents/{agent_id}/chat",
        data={"message": "Stream please"},
        headers={"Accept": "text/event-stream", "X-CSRF-Token": csrf_of(chat)},
    )
    assert streamed.status_code == 200 and "event: delta" in streamed.text and "event: done" in streamed.text
    for tab in ("settings", "knowledge", "channels", "runtime", "tasks"):
        response = await client.get(f"/app/agents/{agent_id}/{tab}")
        assert response.status_code == 200, (tab, response.text[:300])
    for path in (
        "/app",
        "/app/agents",
        "/app/api-keys",
        "/app/billing",
        "/app/usage",
        "/app/team",
        "/app/manager",
    ):
        response = await client.get(path, follow_redirects=True)
        assert response.status_code == 200, (path, response.text[:300])
    agent = (await session.scalars(select(Agent).where(Agent.id == agent_id))).one()
    assert agent.role == "support" and agent.name == "Ada"


async def test_settings_errors_show_next_to_the_field_and_change_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    await sign_up(client)
    agents = await client.get("/app/agents")
    created = await client.post("/app/agents", data={"csrf": csrf_of(agents), "name": "Bo"})
    agent_id = created.headers["location"].split("/")[3]
    settings = await client.get(f"/app/agents/{agent_id}/settings")
    form = {
        "csrf": csrf_of(settings),
        "name": "",
        "temperature": "3",
        "max_tokens": "10",
        "model": "demo/echo",
    }
    refused = await client.post(f"/app/agents/{agent_id}/settings", data=form)
    assert refused.status_code == 422 and 'id="temperature-error"' in refused.text
    agent = (await session.scalars(select(Agent).where(Agent.id == agent_id))).one()
    await session.refresh(agent)
    assert float(agent.temperature) == 0.7
    form.update(temperature="1.2", name="Bo the Second", tools=["current_time"])
    saved = await client.post(f"/app/agents/{agent_id}/settings", data=form)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
    await session.refresh(agent)
    assert (
        agent.name == "Bo the Second" and float(agent.temperature) == 1.2 and agent.tools == ["current_time"]
    )


async def test_per_person_limits_are_set_in_the_form_within_the_plan(
    client: AsyncClient, session: AsyncSession
) -> None:
    await sign_up(client)
    await session.execute(update(Org).values(plan="fairuse"))  # 3 a minute, 100 a day per person
    await session.commit()
    agents = await client.get("/app/agents")
    created = await client.post("/app/agents", data={"csrf": csrf_of(agents), "name": "Bo"})
    agent_id = created.headers["location"].split("/")[3]
    settings = await client.get(f"/app/agents/{agent_id}/settings")
    assert "Messages a minute per person" in settings.text and "Plan: 3" in settings.text
    form = {"csrf": csrf_of(settings), "name": "Bo", "model": "demo/echo"}
    agent = (await session.scalars(select(Agent).where(Agent.id == agent_id))).one()

    for fields, shown in (
        (
            {"end_user_messages_per_minute": "0", "end_user_messages_per_day": ""},
            "Too small: the least is 1.",
        ),
        ({"end_user_messages_per_minute": "4", "end_user_messages_per_day": ""}, "allows at most 3"),
    ):
        refused = await client.post(f"/app/agents/{agent_id}/settings", data={**form, **fields})
        assert refused.status_code == 422 and 'id="end_user_messages_per_minute-error"' in refused.text
        assert shown in refused.text
        await session.refresh(agent)
        assert agent.end_user_messages_per_minute is None  # nothing changed
    spanish = await client.post(
        f"/app/agents/{agent_id}/settings",
        data={**form, "end_user_messages_per_minute": "", "end_user_messages_per_day": "101"},
        headers={"Accept-Language": "es"},
    )
    assert spanish.status_code == 422 and "el plan Fair use permite como máximo 100" in spanish.text

    saved = await client.post(
        f"/app/agents/{agent_id}/settings",
        data={**form, "end_user_messages_per_minute": "2", "end_user_messages_per_day": "50"},
    )
    assert saved.status_code == 303
    await session.refresh(agent)
    assert (agent.end_user_messages_per_minute, agent.end_user_messages_per_day) == (2, 50)
    shown_again = await client.get(f"/app/agents/{agent_id}/settings")
    assert 'name="end_user_messages_per_minute" min="1" value="2"' in shown_again.text
    back = await client.post(
        f"/app/agents/{agent_id}/settings",
        data={**form, "end_user_messages_per_minute": "", "end_user_messages_per_day": "50"},
    )
    assert back.status_code == 303
    await session.refresh(agent)
    assert (agent.end_user_messages_per_minute, agent.end_user_messages_per_day) == (None, 50)  # the plan's


async def test_api_key_is_shown_once(client: AsyncClient) -> None:
    await sign_up(client)
    keys = await client.get("/app/api-keys")
    created = await client.post(
        "/app/api-keys", data={"csrf": csrf_of(keys), "label": "ci", "scopes": ["chat"]}
    )
    assert created.status_code == 200 and "shown only this once" in created.text
    plaintext = re.search(r'id="new-key">([^<]+)<', created.text)
    assert plaintext is not None
    listed = await client.get("/app/api-keys")
    assert plaintext.group(1) not in listed.text and "ci" in listed.text
    answer = await client.get("/v1/models", headers={"Authorization": f"Bearer {plaintext.group(1)}"})
    assert answer.status_code == 403  # a chat-only key; but it is a real key


async def test_without_a_session_pages_send_to_login_and_forms_need_their_token(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    away = await client.get("/app/billing")
    assert away.status_code == 303 and away.headers["location"] == "/login?next=/app/billing"
    account = await create_account(session, settings, email="ada@example.com")
    form = await client.get("/login")
    wrong = await client.post(
        "/login", data={"csrf": csrf_of(form), "email": "ada@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == 401 and "Incorrect email or password" in wrong.text
    assert (
        await client.post("/login", data={"email": "ada@example.com", "password": DEFAULT_PASSWORD})
    ).status_code == 403
    evil = await client.post(
        "/login",
        data={
            "csrf": csrf_of(form),
            "email": "ada@example.com",
            "password": DEFAULT_PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert evil.status_code == 303 and evil.headers["location"] == "/app"
    forged = await client.post("/app/agents", data={"name": "Forged"})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    forged_token = await client.post("/app/agents", data={"name": "Forged", "csrf": "guess"})
    assert forged_token.status_code == 403
    assert (await session.scalars(select(Agent).where(Agent.org_id == account.org.id))).all() == []
    logout = await client.post("/logout")
    assert logout.status_code == 303
    assert (await session.scalars(select(WebSession))).all() == []
    assert (await client.get("/app/agents")).status_code == 303


async def test_another_orgs_agent_is_not_found_and_admin_pages_are_for_admins(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    other = await create_account(session, settings, email="other@example.com")
    foreign = await client.post("/api/v1/agents", json={"name": "Secret agent"}, headers=other.headers)
    foreign_id = foreign.json()["id"]
    await create_account(session, settings, email="me@example.com")
    await log_in(client, "me@example.com")
    for tab in ("chat", "settings", "knowledge", "channels", "runtime", "tasks"):
        response = await client.get(f"/app/agents/{foreign_id}/{tab}")
        assert response.status_code == 404 and "Secret agent" not in response.text
        assert response.headers["content-type"].startswith("text/html")
    page = await client.get("/app/agents")
    posted = await client.post(
        f"/app/agents/{foreign_id}/chat", data={"csrf": csrf_of(page), "message": "hi"}
    )
    assert posted.status_code == 404
    assert (await client.get("/admin")).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/admin",
        "/admin/users",
        "/admin/orgs",
        "/admin/agents",
        "/admin/alerts",
        "/admin/creator-accounts",
        "/admin/runtime-hosts",
        "/admin/users?q=admin",
    ],
)
async def test_admin_console_pages(
    client: AsyncClient, session: AsyncSession, settings: Settings, path: str
) -> None:
    await create_account(session, settings, email="admin@example.com", platform_admin=True)
    await log_in(client, "admin@example.com")
    response = await client.get(path)
    assert response.status_code == 200, response.text[:500]


async def test_whatsapp_linking_from_the_channels_tab(
    settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> None:
    configured = settings.model_copy(
        update={
            "twilio_account_sid": "AC" + "0" * 32,
            "twilio_auth_token": SecretStr("token"),
            "twilio_whatsapp_from": "whatsapp:+15550009999",
        }
    )
    async with asgi_client(
        create_app(resources=build_test_resources(configured, database, database_url))
    ) as client:
        await sign_up(client)
        agents = await client.post(
            "/app/agents", data={"csrf": csrf_of(await client.get("/app/agents")), "name": "Mine"}
        )
        agent_id = agents.headers["location"].split("/")[3]
        page = await client.get(f"/app/agents/{agent_id}/channels")
        assert "link to personal agents" in page.text
        token = csrf_of(page)
        settings_form = {"csrf": token, "name": "Mine", "audience": "personal", "model": "demo/echo"}
        assert (await client.post(f"/app/agents/{agent_id}/settings", data=settings_form)).status_code == 303
        bad = await client.post(
            f"/app/agents/{agent_id}/channels/whatsapp", data={"csrf": token, "phone": "12"}
        )
        assert bad.status_code == 422 and 'id="phone-error"' in bad.text
        linked = await client.post(
            f"/app/agents/{agent_id}/channels/whatsapp", data={"csrf": token, "phone": "+14155550100"}
        )
        assert (
            linked.status_code == 200 and "send &#34;LINK " in linked.text and "+15550009999" in linked.text
        )
        link = await session.scalar(select(ChannelLink).where(ChannelLink.agent_id == agent_id))
        assert link is not None and link.address == "+14155550100" and link.status.value == "pending"


async def test_the_billing_page_shows_each_limit_the_plan_sets_against_what_is_used(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    me = await create_account(session, settings, email="bars@example.com")
    agent = await client.post("/api/v1/agents", json={"name": "Counter"}, headers=me.headers)
    session.add(
        Channel(
            id=new_id("chn"),
            org_id=me.org.id,
            agent_id=agent.json()["id"],
            type=ChannelType.TELEGRAM,
            status=ChannelStatus.ACTIVE,
            external_id="777",
            username="counter_bot",
            token_encrypted="x",
            webhook_secret_hash="0" * 64,
        )
    )
    await session.execute(update(Org).where(Org.id == me.org.id).values(plan="one-bot"))
    await session.commit()
    await log_in(client, "bars@example.com")

    page = (await client.get("/app/billing")).text

    assert "Telegram bots: 1 of 1 (100%)" in page and "limit reached" in page

    await session.execute(update(Org).where(Org.id == me.org.id).values(plan="tiny"))
    await session.commit()
    page = (await client.get("/app/billing")).text
    assert "Messages per month: 0 of 5 (0%)" in page and "Messages per day: 0 of 4 (0%)" in page
    assert "Agents: 1 of 2 (50%)" in page
