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
    prefs = (await client.get("/api/v1/users/me/notifications", headers=owner.headers)).json()
    assert (prefs["email"], prefs["chat"]) == (True, True)
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
    assert (changed.json()["email"], changed.json()["chat"]) == (False, True)
    assert await say(5) == 200  # all used: the owner chose no email
    await jobs.run_pending()
    assert len(mailbox.messages("owner@quota.example")) == 1
    assert await say(6) == 402

    sent = (await client.get("/api/v1/users/me/notifications/sent", headers=owner.headers)).json()["items"]
    assert [(s["kind"], s["channel"]) for s in sent] == [("quota_80", "email")]


async def test_each_kind_of_notice_goes_the_ways_chosen_for_it(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
) -> None:
    owner = await create_account(session, settings, email="owner@kinds.example")
    untouched = (await client.get("/api/v1/users/me/notifications", headers=owner.headers)).json()
    assert [n["kind"] for n in untouched["notices"]] == [
        "low_balance",
        "payment_failed",
        "quota",
        "needs_human",
    ]
    assert all(
        n["email"] and n["telegram"] and n["whatsapp"] and not n["chosen"] for n in untouched["notices"]
    )
    choice = {"kind": "quota", "email": False, "telegram": True, "whatsapp": False}
    saved = await client.put(
        "/api/v1/users/me/notifications",
        json={"email": True, "chat": False, "notices": [choice]},
        headers=owner.headers,
    )
    assert saved.status_code == 200
    by_kind = {n["kind"]: n for n in saved.json()["notices"]}
    assert by_kind["quota"] | {"label": "", "chosen": True} == {**choice, "label": "", "chosen": True}
    # The kinds not named follow the general preference: email yes, chats no.
    assert (by_kind["low_balance"]["email"], by_kind["low_balance"]["telegram"]) == (True, False)

    jobs.deferred += [
        ("billing.quota_notice", {"org_id": owner.org.id, "percent": 80}),
        ("billing.notify_low_balance", {"org_id": owner.org.id, "credits_cents": 50}),
    ]
    await jobs.run_pending()
    [email] = mailbox.wait_for("owner@kinds.example")
    assert "prepaid credits are running low" in email.subject  # the quota notice chose no email

    # Keeping the general preference alone leaves the choices per kind as they were.
    kept = await client.put(
        "/api/v1/users/me/notifications", json={"email": False, "chat": True}, headers=owner.headers
    )
    assert {n["kind"]: n["chosen"] for n in kept.json()["notices"]}["quota"] is True


async def test_bad_preferences_are_refused_and_change_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings, email="owner@refused.example")
    before = (await client.get("/api/v1/users/me/notifications", headers=owner.headers)).json()
    for body in (
        {"email": False, "notices": [{"kind": "weather", "email": True}]},
        {"email": False, "notices": [{"kind": "quota"}, {"kind": "quota", "email": False}]},
        {"email": "sometimes"},
    ):
        refused = await client.put("/api/v1/users/me/notifications", json=body, headers=owner.headers)
        assert refused.status_code == 422, body
        assert refused.json()["detail"]
    after = (await client.get("/api/v1/users/me/notifications", headers=owner.headers)).json()
    assert after == before
