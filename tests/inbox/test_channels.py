"""The inbox on the channels: a member's replies reach Telegram and WhatsApp, the agent stays silent while a
member holds the conversation, ``/human`` asks for a person, blocked people get nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.channels.human_replies import EVENT_SOURCE as HUMAN_REPLY_SOURCE
from hutch.channels.models import SENDING, ChannelLink, ExternalEvent
from hutch.conversations.inbox import HUMAN_ASKED, NEEDS_HUMAN_JOB
from hutch.conversations.models import Message
from hutch.notifications.customers import NOTIFY_CHATS_JOB
from hutch.notifications.models import (
    NotificationChoice,
    NotificationPreference,
    OutboundEmail,
    SentNotification,
)
from hutch.settings import Settings
from tests.channels.test_telegram import OnTelegram, on_telegram  # noqa: F401  (fixture)
from tests.channels.test_whatsapp import USER, OnWhatsApp, on_whatsapp, twilio_server  # noqa: F401
from tests.conftest import RecordingJobQueue
from tests.factories import Account, create_account
from tests.fakes.telegram import Sender, text_update

ADA = Sender()


def echo(text: str) -> str:
    return f"[Demo — no AI] You said: {text}"


async def only_item(client: Any, owner: Account) -> dict[str, Any]:
    listed = (await client.get("/api/v1/conversations", headers=owner.headers)).json()
    assert listed["total"] == 1, listed
    item: dict[str, Any] = listed["items"][0]
    return item


async def messages(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def test_telegram_takeover_reply_release_human_and_block(on_telegram: OnTelegram) -> None:  # noqa: F811
    t = on_telegram
    assert await t.say("hi") == [echo("hi")]  # the demo model echoes
    item = await only_item(t.client, t.owner)
    assert item["channel"] == "telegram"
    assert item["end_user"]["display_name"] == "Ada Lovelace" and item["end_user"]["username"] == "ada_l"
    base = f"/api/v1/conversations/{item['id']}"

    assert (await t.client.post(f"{base}/takeover", headers=t.owner.headers)).status_code == 200
    assert await t.say("is anyone there?") == []  # the agent stays silent
    shown = (await t.client.get(base, headers=t.owner.headers)).json()
    assert shown["messages"][-1]["content"] == "is anyone there?"  # stored and shown

    reply = await t.client.post(
        f"{base}/reply", json={"content": "Grace here, how can I help?"}, headers=t.owner.headers
    )
    assert reply.status_code == 201
    await t.run_jobs()
    assert t.telegram.sent_texts(ADA.id)[-1] == "Grace here, how can I help?"  # through the bot

    assert (await t.client.post(f"{base}/release", headers=t.owner.headers)).status_code == 200
    assert await t.say("thanks") == [echo("thanks")]  # the agent answers again

    assert await t.say("/human") == [HUMAN_ASKED]
    assert (await only_item(t.client, t.owner))["status"] == "needs_human"
    assert isinstance(t.resources.jobs, RecordingJobQueue)

    end_user_id = item["end_user"]["id"]
    blocked = await t.client.post(f"/api/v1/end-users/{end_user_id}/block", headers=t.owner.headers)
    assert blocked.status_code == 200
    before = await messages(t.session)
    assert await t.say("hello?") == []  # no answer
    assert await messages(t.session) == before  # nothing stored, nothing counted
    await t.client.delete(f"/api/v1/end-users/{end_user_id}/block", headers=t.owner.headers)
    assert await t.say("hello again") == [echo("hello again")]


async def test_a_reply_interrupted_while_sending_is_not_sent_twice(on_telegram: OnTelegram) -> None:  # noqa: F811
    t = on_telegram
    assert await t.say("hi") == [echo("hi")]
    base = f"/api/v1/conversations/{(await only_item(t.client, t.owner))['id']}"
    assert (await t.client.post(f"{base}/takeover", headers=t.owner.headers)).status_code == 200
    reply = await t.client.post(f"{base}/reply", json={"content": "Grace here"}, headers=t.owner.headers)
    message_id = reply.json()["id"]
    # A worker stopped after marking the send, before recording it: Telegram may or may not have it.
    t.session.add(
        ExternalEvent(source=HUMAN_REPLY_SOURCE, external_id=message_id, payload={}, outcome=SENDING)
    )
    await t.session.commit()
    sent_before = len(t.telegram.sent_texts(ADA.id))
    await t.run_jobs()
    assert len(t.telegram.sent_texts(ADA.id)) == sent_before  # not sent again
    shown = (await t.client.get(base, headers=t.owner.headers)).json()["messages"][-1]
    assert shown["content"] == "Grace here" and shown["status"] == "failed"


async def test_asking_for_a_person_tells_every_member(
    on_telegram: OnTelegram,  # noqa: F811
    settings: Settings,
) -> None:
    t = on_telegram
    # Any member may answer a conversation; a billing notice, by contrast, goes to owners only.
    member = await create_account(
        t.session, settings, email="member@team.example", org=t.owner.org, role=OrgRole.MEMBER
    )
    await t.session.commit()
    jobs = t.resources.jobs
    assert isinstance(jobs, RecordingJobQueue) and jobs.worker_resources is not None
    assert await t.post(text_update("/human")) == 200
    name, kwargs = jobs.deferred.pop(0)
    await jobs.execute(name, kwargs, job_id=0, attempt=0, resources=jobs.worker_resources)
    notices = [kwargs for name, kwargs in jobs.deferred if name == NEEDS_HUMAN_JOB]
    assert len(notices) == 1 and "/human" in notices[0]["reason"]
    await jobs.run_pending()
    emails = await t.session.scalars(select(OutboundEmail).where(OutboundEmail.kind == "needs_human"))
    assert sorted(e.to_address for e in emails) == sorted([t.owner.user.email, member.user.email])


async def test_the_notice_goes_the_ways_each_owner_chose_for_a_person_needed(
    on_telegram: OnTelegram,  # noqa: F811
    settings: Settings,
) -> None:
    t = on_telegram
    s = t.session
    # Email in general, but not for this kind of notice; and the other way round for a second owner.
    quiet = t.owner.user.id
    second = await create_account(
        s, settings, email="second@owners.example", org=t.owner.org, role=OrgRole.OWNER
    )
    s.add_all(
        [
            NotificationPreference(user_id=quiet, email=True, chat=True),
            NotificationChoice(user_id=quiet, kind="needs_human", email=False, telegram=True, whatsapp=True),
            NotificationPreference(user_id=second.user.id, email=False, chat=False),
            NotificationChoice(
                user_id=second.user.id, kind="needs_human", email=True, telegram=False, whatsapp=False
            ),
        ]
    )
    await s.commit()
    jobs = t.resources.jobs
    assert isinstance(jobs, RecordingJobQueue) and jobs.worker_resources is not None
    assert await t.post(text_update("/human")) == 200
    while jobs.deferred and jobs.deferred[0][0] != NEEDS_HUMAN_JOB:
        name, kwargs = jobs.deferred.pop(0)
        await jobs.execute(name, kwargs, job_id=0, attempt=0, resources=jobs.worker_resources)
    name, kwargs = jobs.deferred.pop(0)
    assert await jobs.execute(name, kwargs, job_id=0, attempt=0, resources=jobs.worker_resources) == 1
    chats = [kwargs for name, kwargs in jobs.deferred if name == NOTIFY_CHATS_JOB]
    assert [c["kind"] for c in chats] == ["needs_human"]  # the chats follow the same kind's choices
    await jobs.run_pending()
    emails = await s.scalars(select(OutboundEmail).where(OutboundEmail.kind == "needs_human"))
    assert [e.to_address for e in emails] == ["second@owners.example"]
    sent = await s.scalars(select(SentNotification).where(SentNotification.kind == "needs_human"))
    assert [(n.user_id, n.channel) for n in sent] == [(second.user.id, "email")]


async def test_whatsapp_replies_inside_the_window_and_as_the_template_outside(
    on_whatsapp: OnWhatsApp,  # noqa: F811
) -> None:
    w = on_whatsapp
    await w.say(f"LINK {await w.link()}")
    await w.say("hello")
    item = await only_item(w.client, w.owner)
    assert item["end_user"]["display_name"] == "WhatsApp +1555•••4567"
    base = f"/api/v1/conversations/{item['id']}"
    assert (await w.client.post(f"{base}/takeover", headers=w.owner.headers)).status_code == 200
    assert await w.say("a person please") == []

    await w.client.post(f"{base}/reply", json={"content": "Inside the window"}, headers=w.owner.headers)
    assert isinstance(w.resources.jobs, RecordingJobQueue)
    await w.resources.jobs.run_pending()
    assert w.twilio.sent_bodies(f"whatsapp:{USER}")[-1] == "Inside the window"

    await w.session.execute(
        update(ChannelLink)
        .where(ChannelLink.address == USER)
        .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
    )
    await w.session.commit()
    await w.client.post(f"{base}/reply", json={"content": "Outside the window"}, headers=w.owner.headers)
    await w.resources.jobs.run_pending()
    last = [r.params for r in w.twilio.requests if r.method == "POST"][-1]
    assert last["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert "Outside the window" in str(last["ContentVariables"])
