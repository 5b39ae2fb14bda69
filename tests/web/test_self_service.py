"""What customers set for themselves in the dashboard: the org shown, API key limits, linked chats,
notification preferences, an agent's memories, and the operator's privacy and terms pages."""

from __future__ import annotations

import re

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.apikeys.models import ApiKey
from tests.web.test_dashboard import csrf_of, sign_up


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
