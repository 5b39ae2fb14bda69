"""Owners hear when the month's messages are 80% and 100% used, the ways they chose; every notice is
recorded."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import Org
from hutch.settings import Settings
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.fakes.smtp import SmtpServer


async def test_quota_notices_follow_preferences_and_are_recorded(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, email="owner@quota.example")
    await session.execute(update(Org).where(Org.id == owner.org.id).values(plan="monthly5"))
    await session.commit()
    prefs = await client.get("/api/v1/users/me/notifications", headers=owner.headers)
    assert prefs.json() == {"email": True, "chat": True}
    agent = (
        await client.post(
            "/api/v1/agents", json={"name": "Busy", "model": "demo/echo"}, headers=owner.headers
        )
    ).json()

    async def say(n: int) -> int:
        answer = await client.post(
            f"/api/v1/agents/{agent['id']}/chat", json={"message": f"m{n}"}, headers=owner.headers
        )
        return answer.status_code

    for n in range(1, 4):
        assert await say(n) == 200
    assert [name for name, _ in jobs.deferred if name == "billing.quota_notice"] == []
    assert await say(4) == 200  # 4 of 5: the 80% mark
    await jobs.run_pending()
    [email] = mailbox.wait_for("owner@quota.example")
    assert "80% of the Five a month plan's 5 messages" in email.subject

    changed = await client.put(
        "/api/v1/users/me/notifications", json={"email": False, "chat": True}, headers=owner.headers
    )
    assert changed.json() == {"email": False, "chat": True}
    assert await say(5) == 200  # all used: the owner chose no email
    await jobs.run_pending()
    assert len(mailbox.messages("owner@quota.example")) == 1
    assert await say(6) == 402

    sent = (await client.get("/api/v1/users/me/notifications/sent", headers=owner.headers)).json()["items"]
    assert [(s["kind"], s["channel"]) for s in sent] == [("quota_80", "email")]
