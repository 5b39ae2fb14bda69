"""What customers set for themselves in the dashboard: the org shown, API key limits, linked chats,
notification preferences, an agent's memories, and the operator's privacy and terms pages."""

from __future__ import annotations

import re
from pathlib import Path

from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Membership, OrgRole
from hutch.apikeys.models import ApiKey
from hutch.app import create_app
from hutch.channels.models import ChannelLink
from hutch.conversations.repository import MemoryRepository
from hutch.db.engine import Database
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.web.models import WebSession
from tests.conftest import asgi_client, build_test_resources
from tests.factories import create_account
from tests.fakes.telegram import FakeTelegramServer
from tests.web.test_dashboard import csrf_of, log_in, sign_up

PLATFORM_TOKEN = "555000222:AAE_platform_bot_token_for_the_dashboard"


async def test_keys_are_created_with_limits_and_changed_later(
    client: AsyncClient, session: AsyncSession
) -> None:
    await sign_up(client)
    agents = await client.get("/app/agents")
    created = await client.post("/app/agents", data={"csrf": csrf_of(agents), "name": "Only"})
    agent_id = created.headers["location"].split("/")[3]
    page = await client.get("/app/api-keys")
    assert "Requests per minute" in page.text and "Monthly budget" in page.text and "Only" in page.text
    form = {
        "csrf": csrf_of(page),
        "label": "limited",
        "scopes": ["chat"],
        "rate": "30",
        "budget": "12.50",
        "agents": [agent_id],
    }
    made = await client.post("/app/api-keys", data=form)
    assert made.status_code == 200 and "shown only this once" in made.text
    assert "30/min" in made.text and "$0.00 of $12.50 this month" in made.text and "only Only" in made.text
    key = (await session.scalars(select(ApiKey).where(ApiKey.label == "limited"))).one()
    assert (key.rate_limit_per_minute, key.monthly_budget_cents, key.agent_ids) == (30, 1250, [agent_id])

    edit = await client.get(f"/app/api-keys/{key.id}")
    assert edit.status_code == 200 and 'value="12.50"' in edit.text
    changed = await client.post(
        f"/app/api-keys/{key.id}",
        data={"csrf": csrf_of(edit), "label": "limited", "rate": "", "budget": "40", "expires": "2099-01-31"},
    )
    assert changed.status_code == 303
    await session.refresh(key)
    assert (key.rate_limit_per_minute, key.monthly_budget_cents, key.agent_ids) == (None, 4000, None)
    assert key.expires_at is not None and key.expires_at.date().isoformat() == "2099-01-31"


async def test_bad_key_settings_show_next_to_their_field_and_change_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    await sign_up(client)
    page = await client.get("/app/api-keys")
    for field, value in (("rate", "fast"), ("budget", "ten"), ("rate", "0"), ("budget", "1.234")):
        refused = await client.post(
            "/app/api-keys", data={"csrf": csrf_of(page), "label": "bad", "scopes": ["read"], field: value}
        )
        assert refused.status_code == 422, (field, value)
        assert re.search(rf'id="{field}-error"', refused.text), (field, refused.text[-2000:])
    assert (await session.scalars(select(ApiKey).where(ApiKey.label == "bad"))).first() is None

    made = await client.post(
        "/app/api-keys", data={"csrf": csrf_of(page), "label": "good", "scopes": ["read"], "rate": "9"}
    )
    assert made.status_code == 200
    key = (await session.scalars(select(ApiKey).where(ApiKey.label == "good"))).one()
    refused = await client.post(
        f"/app/api-keys/{key.id}",
        data={"csrf": csrf_of(page), "label": "good", "rate": "9", "expires": "2001-01-01"},
    )
    assert refused.status_code == 422 and 'id="expires-error"' in refused.text
    await session.refresh(key)
    assert key.expires_at is None and key.rate_limit_per_minute == 9


async def test_people_in_several_orgs_switch_the_org_every_page_shows(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alpha = await create_account(session, settings, org_name="Alpha Co", email="both@example.com")
    beta = await create_account(session, settings, org_name="Beta Co")
    stranger = await create_account(session, settings, org_name="Gamma Co")
    # Each bot made while its maker is in one org only, so it lands in that org.
    await client.post("/api/v1/agents", json={"name": "Alpha bot"}, headers=alpha.headers)
    await client.post("/api/v1/agents", json={"name": "Beta bot"}, headers=beta.headers)
    session.add(Membership(org_id=beta.org.id, user_id=alpha.user.id, role=OrgRole.MEMBER))
    await session.commit()
    await log_in(client, "both@example.com")

    agents = await client.get("/app/agents")
    assert 'id="org-switch"' in agents.text and "Beta Co (member)" in agents.text
    assert "Alpha Co (owner)" in agents.text and "Gamma Co" not in agents.text
    # Both memberships start in the same transaction here, so either org may come first.
    first, second = (alpha, beta) if "Alpha bot" in agents.text else (beta, alpha)
    first_bot, second_bot = ("Alpha bot", "Beta bot") if first is alpha else ("Beta bot", "Alpha bot")
    assert second_bot not in agents.text
    switched = await client.post(
        "/app/org",
        data={"csrf": csrf_of(agents), "org_id": second.org.id, "next": "/app/agents/agt_x/chat"},
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/app/agents"
    for path in ("/app/agents", "/app/usage", "/app/team"):  # every page shows the chosen org
        shown = await client.get(path)
        assert re.search(rf'<option value="{second.org.id}" selected', shown.text), path
    listed = (await client.get("/app/agents")).text
    assert second_bot in listed and first_bot not in listed

    refused = await client.post("/app/org", data={"csrf": csrf_of(agents), "org_id": stranger.org.id})
    assert refused.status_code == 404 and "Gamma Co" not in refused.text
    web_session = (await session.scalars(select(WebSession))).one()
    await session.refresh(web_session)
    assert web_session.org_id == second.org.id  # unchanged by the refusal


async def test_notification_preferences_page_saves_the_ways_of_each_notice(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings, email="prefs@example.com")
    await log_in(client, "prefs@example.com")
    page = await client.get("/app/settings/notifications")
    assert page.status_code == 200 and "A conversation needs a person" in page.text
    assert 'name="quota.whatsapp"' in page.text and "checked" in page.text
    saved = await client.post(
        "/app/settings/notifications",
        data={"csrf": csrf_of(page), "email": "on", "quota.email": "on", "needs_human.telegram": "on"},
    )
    assert saved.status_code == 303
    api = (await client.get("/api/v1/users/me/notifications", headers=owner.headers)).json()
    by_kind = {n["kind"]: (n["email"], n["telegram"], n["whatsapp"]) for n in api["notices"]}
    assert by_kind == {
        "low_balance": (False, False, False),
        "payment_failed": (False, False, False),
        "quota": (True, False, False),
        "needs_human": (False, True, False),
    }
    assert (api["email"], api["chat"]) == (True, False)
    again = await client.get("/app/settings/notifications")
    assert re.search(r'name="quota\.email" id="quota-email" aria-label="[^"]+" checked', again.text)
    assert not re.search(r'name="quota\.telegram" id="quota-telegram" aria-label="[^"]+" checked', again.text)


async def test_memories_tab_shows_each_person_and_forgets_on_request(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings, email="mem@example.com")
    other = await create_account(session, settings, org_name="Other")
    agent = (await client.post("/api/v1/agents", json={"name": "Rem"}, headers=owner.headers)).json()
    theirs = (await client.post("/api/v1/agents", json={"name": "T"}, headers=other.headers)).json()
    memories = MemoryRepository(session)
    tea = await memories.add_fact(owner.org.id, agent["id"], "telegram:1", "Likes green tea")
    await memories.add_fact(owner.org.id, agent["id"], "telegram:1", "Lives in Lyon")
    await memories.add_fact(owner.org.id, agent["id"], "whatsapp:+15550001", "Has a cat")
    foreign = await memories.add_fact(other.org.id, theirs["id"], "telegram:1", "Secret of Other")
    await session.commit()
    await log_in(client, "mem@example.com")

    tab = await client.get(f"/app/agents/{agent['id']}/memories?end_user=telegram:1")
    assert tab.status_code == 200 and "Likes green tea" in tab.text and "Lives in Lyon" in tab.text
    assert "whatsapp:+15550001 (1 fact)" in tab.text and "Secret of Other" not in tab.text
    token = csrf_of(tab)
    gone = await client.post(
        f"/app/agents/{agent['id']}/memories/{tea.id}/delete", data={"csrf": token, "end_user": "telegram:1"}
    )
    assert gone.status_code == 303 and "end_user=telegram%3A1" in gone.headers["location"]
    after = await client.get(gone.headers["location"])
    assert "Likes green tea" not in after.text and "Lives in Lyon" in after.text and "Forgotten" in after.text
    not_ours = await client.post(
        f"/app/agents/{agent['id']}/memories/{foreign.id}/delete", data={"csrf": token}
    )
    assert not_ours.status_code == 404
    forgot = await client.post(
        f"/app/agents/{agent['id']}/memories/forget", data={"csrf": token, "end_user": "telegram:1"}
    )
    assert forgot.status_code == 303
    api = await client.get(f"/api/v1/agents/{agent['id']}/memories", headers=owner.headers)
    assert [m["content"] for m in api.json()["items"]] == ["Has a cat"]
    theirs_left = await client.get(f"/api/v1/agents/{theirs['id']}/memories", headers=other.headers)
    assert [m["content"] for m in theirs_left.json()["items"]] == ["Secret of Other"]


async def test_privacy_and_terms_show_the_operators_text_safely(
    client: AsyncClient, resources: Resources, tmp_path: Path
) -> None:
    default = await client.get("/privacy")
    assert default.status_code == 200 and "has not published its privacy policy" in default.text
    assert "has not published its terms of service" in (await client.get("/terms")).text
    privacy = tmp_path / "privacy.md"
    privacy.write_text(
        "# Our privacy\n\nWe keep **little**. <script>alert(1)</script> [x](javascript:alert(1))\n"
    )
    terms = tmp_path / "terms.txt"
    terms.write_text("Be nice.\n<b>No HTML</b> here.\n\nSecond paragraph.")
    resources.settings = resources.settings.model_copy(update={"privacy_file": privacy, "terms_file": terms})
    shown = await client.get("/privacy")
    assert "<h1>Our privacy</h1>" in shown.text and "<strong>little</strong>" in shown.text
    assert "<script>alert" not in shown.text and 'href="javascript:' not in shown.text
    plain = await client.get("/terms")
    assert "Be nice.<br>" in plain.text and "&lt;b&gt;No HTML&lt;/b&gt;" in plain.text
    assert "<p>Second paragraph.</p>" in plain.text
    for path in ("/signup", "/login", "/pricing"):
        linked = await client.get(path)
        assert 'href="/privacy"' in linked.text and 'href="/terms"' in linked.text, path


async def test_personal_chats_are_linked_listed_and_removed_from_the_dashboard(
    telegram_server: FakeTelegramServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> None:
    telegram_server.reset()
    telegram_server.add_bot(PLATFORM_TOKEN, "hutch_assistant_bot")
    configured = settings.model_copy(
        update={
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_token": SecretStr(PLATFORM_TOKEN),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings, email="chats@example.com")
        await log_in(client, "chats@example.com")
        page = await client.get("/app/settings/chats")
        assert page.status_code == 200 and "Create an agent" in page.text  # no personal agent yet
        token = csrf_of(page)
        refused = await client.post("/app/settings/chats/telegram", data={"csrf": token})
        assert refused.status_code == 409 and 'id="telegram-error"' in refused.text
        await client.post(
            "/api/v1/agents", json={"name": "Jarvis", "audience": "personal"}, headers=owner.headers
        )
        bad = await client.post(
            "/app/settings/chats/telegram", data={"csrf": token, "telegram_username": "x!"}
        )
        assert bad.status_code == 422 and 'id="telegram_username-error"' in bad.text
        no_whatsapp = await client.post(
            "/app/settings/chats/whatsapp", data={"csrf": token, "phone": "+15550001"}
        )
        assert no_whatsapp.status_code == 503 and 'id="phone-error"' in no_whatsapp.text
        assert (await session.scalars(select(ChannelLink))).first() is None  # nothing stored by refusals

        started = await client.post("/app/settings/chats/telegram", data={"csrf": token})
        assert started.status_code == 200
        # A code is token_urlsafe: it may start or end with - as well as _.
        assert re.search(r'"https://t\.me/hutch_assistant_bot\?start=[\w-]{32}"', started.text)
        assert "waiting for the code" in started.text and "Jarvis" in started.text
        link = (await session.scalars(select(ChannelLink))).one()
        api = (await client.get("/api/v1/users/me/channels", headers=owner.headers)).json()["items"]
        assert [item["id"] for item in api] == [link.id]  # the same links the API lists

        removed = await client.post(f"/app/settings/chats/{link.id}/remove", data={"csrf": token})
        assert removed.status_code == 303
        assert "No chats linked yet" in (await client.get("/app/settings/chats")).text
        assert (await client.get("/api/v1/users/me/channels", headers=owner.headers)).json()["items"] == []
