"""Attacks through the web layer replayed: open redirects, CORS origin reflection, SQL and template
injection through headers, ids and prompts."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.app import create_app
from hutch.resources import Resources
from hutch.settings import Settings
from tests.conftest import asgi_client
from tests.factories import Account, create_account
from tests.fakes.llm import FakeLLMServer

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Where a link could try to send someone: another site, spelled the ways browsers still read as one.
ELSEWHERE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    " //evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "/%2F%2Fevil.example",  # stays a path on this site (browsers do not decode it), allowed as such
]


def off_site(location: str) -> bool:
    """Whether a browser following this Location would leave the site."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/").strip()
    return not cleaned.startswith("/") or cleaned.startswith("//") or ":" in cleaned.split("/", 1)[0]


async def csrf(client: AsyncClient, path: str) -> str:
    found = CSRF.search((await client.get(path)).text)
    assert found is not None
    return found.group(1)


async def test_open_redirect(client: AsyncClient, session: AsyncSession, settings: Settings) -> None:
    """Every URL Hutch redirects to from a parameter stays on the site: the login's `next` (also what
    single sign-on carries) and the organisation switcher's `next`; checkout return URLs must be http(s)."""
    account = await create_account(session, settings)
    assert off_site("//evil.example") and off_site("/\t/evil.example") and not off_site("/app")
    for n, target in enumerate(ELSEWHERE):
        page = await client.get("/login", params={"next": target})
        assert 'href="//evil' not in page.text and 'action="//evil' not in page.text
        if n < 3 or "\t" in target:  # signing in costs a password hash; both routes share one check
            client.cookies.clear()
            form = {"email": account.user.email, "password": account.password, "next": target}
            answer = await client.post("/login", data={"csrf": await csrf(client, "/login"), **form})
            assert answer.status_code == 303 and not off_site(answer.headers["location"]), target
        switched = await client.post(
            "/app/org",
            data={"csrf": await csrf(client, "/app/agents"), "org_id": account.org.id, "next": target},
        )
        assert switched.status_code == 303 and not off_site(switched.headers["location"]), target
    for provider in ("google", "oidc"):  # configured or not, never a redirect elsewhere from `next`
        started = await client.get(f"/auth/oidc/{provider}/login", params={"next": "//evil.example/"})
        assert "evil.example" not in started.headers.get("location", "")
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.example/"):
        checkout = await client.post(
            "/api/v1/billing/checkout",
            json={"plan": "pro", "success_url": url, "cancel_url": url},
            headers=account.headers,
        )
        assert checkout.status_code == 422, url


async def test_cors_origin_reflection(
    resources: Resources, session: AsyncSession, settings: Settings
) -> None:
    """An arbitrary Origin is never echoed with credentials: the dashboard API answers only the operator's
    listed origins, and the widget's routes, open to any site by design, never allow credentials."""
    listed = "https://app.example"
    configured = dataclasses.replace(
        resources, settings=settings.model_copy(update={"allowed_origins": [listed]})
    )
    account = await create_account(session, settings)
    async with asgi_client(create_app(resources=configured)) as client:
        for origin in (
            "https://evil.example",
            "null",
            "https://app.example.evil.example",
            "http://app.example",
        ):
            simple = await client.get("/api/v1/users/me", headers={**account.headers, "Origin": origin})
            assert simple.headers.get("access-control-allow-origin") not in (origin, "*")
            preflight = await client.options(
                "/api/v1/users/me",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "DELETE",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.headers.get("access-control-allow-origin") not in (origin, "*")
        good = await client.get("/api/v1/users/me", headers={**account.headers, "Origin": listed})
        assert good.headers["access-control-allow-origin"] == listed  # the check can tell them apart
        widget = await client.get("/api/v1/widget/nope", headers={"Origin": "https://evil.example"})
        assert widget.headers.get("access-control-allow-credentials") is None
        widget_preflight = await client.options(
            "/api/v1/widget/nope/messages",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert widget_preflight.headers.get("access-control-allow-credentials") is None


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE orgs; --",
    "agt_x' UNION SELECT id FROM users --",
    "{{7*7}}",
    "${7*7}",
]


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Owner {{7*7}}")


async def test_sql_and_template_injection(
    client: AsyncClient, session: AsyncSession, owner: Account, fake_llm: FakeLLMServer
) -> None:
    """Through headers, ids and prompts: SQL is data, never code (ids answer 404, headers are refused or
    ignored, no table is touched); a persona with template syntax reaches the model verbatim and pages
    show it as written."""
    orgs = await session.scalar(select(func.count()).select_from(Org))
    for value in INJECTIONS:
        headers = {**owner.headers, "X-Org-Id": value, "X-Request-ID": value}
        assert (await client.get("/api/v1/agents", headers=headers)).status_code == 404  # not a member
        for path in (f"/api/v1/agents/{value}", f"/api/v1/conversations/{value}", f"/v1/responses/{value}"):
            answer = await client.get(path, headers=owner.headers)
            assert answer.status_code in (401, 404), (path, answer.status_code)
            assert "syntax" not in answer.text.lower() and "sql" not in answer.text.lower()
        listing = await client.get("/api/v1/conversations", params={"q": value}, headers=owner.headers)
        assert listing.status_code == 200 and listing.json()["total"] == 0
        key = await client.get("/api/v1/users/me", headers={"X-API-Key": f"hk_{value}"})
        assert key.status_code == 401
    assert await session.scalar(select(func.count()).select_from(Org)) == orgs

    persona = "You are {{7*191}} and {% raw %}${7*191}{{ config }}{% endraw %} <%= 7*191 %>"  # 1337
    created = await client.post(
        "/api/v1/agents",
        json={"name": "{{7*7}}", "system_prompt": persona, "model": "openai/gpt-4o"},
        headers=owner.headers,
    )
    agent = created.json()
    fake_llm.reset()
    said = await client.post(
        f"/api/v1/agents/{agent['id']}/chat",
        json={"message": "{{ 7*191 }} {{config}}"},
        headers=owner.headers,
    )
    assert said.status_code == 200, said.text
    sent = json.dumps(fake_llm.requests[-1].body["messages"])
    assert json.dumps(persona)[1:-1] in sent and "{{ 7*191 }} {{config}}" in sent
    assert "1337" not in sent
    stored = await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    assert stored.json()["system_prompt"] == persona and stored.json()["name"] == "{{7*7}}"
    client.cookies.clear()
    await client.post(
        "/login",
        data={"csrf": await csrf(client, "/login"), "email": owner.user.email, "password": owner.password},
    )
    for path in ("/app/agents", f"/app/agents/{agent['id']}/settings", f"/app/agents/{agent['id']}/chat"):
        page = await client.get(path)
        assert page.status_code == 200 and "{{7*7}}" in page.text and ">49<" not in page.text, path
