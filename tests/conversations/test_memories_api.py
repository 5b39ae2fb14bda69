"""An agent's memories per end user through the API: who it remembers, and forgetting one person."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.conversations.repository import MemoryRepository
from hutch.settings import Settings
from tests.factories import create_account


async def test_people_remembered_and_forgetting_one_of_them(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    agent = (await client.post("/api/v1/agents", json={"name": "Rem"}, headers=owner.headers)).json()
    memories = MemoryRepository(session)
    for fact in ("Likes tea", "Lives in Lyon"):
        await memories.add_fact(owner.org.id, agent["id"], "telegram:1", fact)
    await memories.add_fact(owner.org.id, agent["id"], "api:bob", "Has a cat")
    await session.commit()
    base = f"/api/v1/agents/{agent['id']}/memories"

    people = (await client.get(f"{base}/end-users", headers=owner.headers)).json()["items"]
    assert sorted((p["end_user"], p["facts"], p["summaries"]) for p in people) == [
        ("api:bob", 1, 0),
        ("telegram:1", 2, 0),
    ]
    one = (await client.get(base, params={"end_user": "telegram:1"}, headers=owner.headers)).json()
    assert sorted(m["content"] for m in one["items"]) == ["Likes tea", "Lives in Lyon"]

    missing = await client.delete(base, headers=owner.headers)
    assert missing.status_code == 422 and "end_user" in str(missing.json()["detail"])
    forgotten = await client.delete(base, params={"end_user": "telegram:1"}, headers=owner.headers)
    assert forgotten.status_code == 200 and forgotten.json() == {"end_user": "telegram:1", "deleted": 2}
    left = (await client.get(base, headers=owner.headers)).json()["items"]
    assert [m["content"] for m in left] == ["Has a cat"]
    again = await client.delete(base, params={"end_user": "telegram:1"}, headers=owner.headers)
    assert again.json()["deleted"] == 0
