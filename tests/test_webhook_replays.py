"""Every provider's webhooks, replayed: each valid event posted 50 times, shuffled among the others, has one
effect — one answer sent, one session charged, one payment counted. (Bad signatures are refused and store
nothing: each channel's own tests cover missing, wrong, stale and tampered requests.)"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import func, select

from hutch.billing.models import BillingAccount, LedgerEntry, LedgerKind, RevenueEvent, StripeEvent
from hutch.channels.models import ExternalEvent
from tests.billing.test_stripe import Paying, paying  # noqa: F401 - fixtures
from tests.channels.test_telegram import OnTelegram, on_telegram  # noqa: F401
from tests.channels.test_voice import Voice, livekit_server, voice  # noqa: F401
from tests.channels.test_whatsapp import OnWhatsApp, on_whatsapp, twilio_server  # noqa: F401
from tests.conftest import RecordingJobQueue
from tests.factories import create_account
from tests.fakes.livekit import room_event, signed_webhook
from tests.fakes.stripe_signing import sign_event
from tests.fakes.telegram import Sender, text_update

COPIES = 50


def shuffled(items: list[Any], copies: int = COPIES) -> list[Any]:
    everything = [item for item in items for _ in range(copies)]
    random.Random(4).shuffle(everything)
    return everything


async def test_telegram_updates(on_telegram: OnTelegram) -> None:  # noqa: F811
    t = on_telegram
    updates = [text_update(f"question {n}", update_id=9000 + n) for n in range(4)]
    for update in shuffled(updates):
        assert await t.post(update) == 200
    assert await t.run_jobs() == ["answered"] * 4
    assert sorted(t.telegram.sent_texts(Sender().id)) == [
        f"[Demo — no AI] You said: question {n}" for n in range(4)
    ]
    stored = await t.session.scalar(select(func.count()).select_from(ExternalEvent))
    assert stored == 4


async def test_twilio_whatsapp_messages(on_whatsapp: OnWhatsApp) -> None:  # noqa: F811
    w = on_whatsapp
    code = await w.link()
    assert "Linked!" in (await w.say(f"LINK {code}"))[0]
    before = len(w.twilio.sent_bodies())
    messages = [(f"message {n}", f"SM{n:032d}") for n in range(3)]
    for body, sid in shuffled(messages):
        assert await w.inbound(body, message_sid=sid) == 200
    assert isinstance(w.resources.jobs, RecordingJobQueue)
    await w.resources.jobs.run_pending()
    assert sorted(w.twilio.sent_bodies()[before:]) == [
        f"[Demo — no AI] You said: message {n}" for n in range(3)
    ]


async def test_livekit_room_events(voice: Voice) -> None:  # noqa: F811
    v = voice
    await v.grant(600)
    me, now = f"user:{v.owner.user.id}", int(time.time())
    rooms = [(await v.token()).json() for _ in range(2)]
    for phase, (kind, at) in enumerate((("participant_joined", now - 60 - 10), ("participant_left", now))):
        events = [room_event(kind, issued["room"], me, at=at - 10 * i) for i, issued in enumerate(rooms)]
        for event in shuffled(events):
            body, headers = signed_webhook(event)
            assert (
                await v.client.post("/webhooks/livekit", content=body, headers=headers)
            ).status_code == 200
        assert sorted(await v.jobs.run_pending()) == (["started"] * 2 if phase == 0 else ["ended"] * 2)
    charged = [(await v.stored(issued["session_id"])).charged_seconds for issued in rooms]
    assert charged == [70, 70] and await v.seconds() == 600 - 140


async def test_stripe_events(paying: Paying) -> None:  # noqa: F811
    """A subscription with a trial and a paid credit pack: each event 50 times, shuffled together."""
    p = paying
    owner = await create_account(p.session, p.resources.settings)
    urls = {"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}
    started = await p.client.post(
        "/api/v1/billing/checkout", json={"plan": "starter", **urls}, headers=owner.headers
    )
    bought = await p.client.post(
        "/api/v1/billing/purchase", json={"package_id": "credits-10", **urls}, headers=owner.headers
    )
    assert started.status_code == 200 and bought.status_code == 200, (started.text, bought.text)
    events = p.stripe.complete(started.json()["session_id"]) + p.stripe.complete(bought.json()["session_id"])
    for event in shuffled(events):
        signed = sign_event(event, p.secret)
        answer = await p.client.post("/webhooks/stripe", content=signed.body, headers=signed.headers)
        assert answer.status_code == 200, answer.text
    assert isinstance(p.resources.jobs, RecordingJobQueue)
    await p.resources.jobs.run_pending()
    assert await p.session.scalar(select(func.count()).select_from(StripeEvent)) == len(events)
    account = await p.session.get(BillingAccount, owner.org.id, populate_existing=True)
    assert account is not None and account.status.value == "trialing"
    purchases = await p.session.scalar(
        select(func.count()).select_from(RevenueEvent).where(RevenueEvent.package == "credits-10")
    )
    assert purchases == 1  # the pack was paid once, however often Stripe said so
    balance = (await p.client.get("/api/v1/billing/balance", headers=owner.headers)).json()
    assert balance["credits_cents"] >= 1000
    credited = (
        await p.session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.org_id == owner.org.id, LedgerEntry.kind == LedgerKind.PURCHASE
            )
        )
    ).all()
    assert [e.amount for e in credited] == [1000]
    entries = (await p.session.scalars(select(LedgerEntry).where(LedgerEntry.org_id == owner.org.id))).all()
    assert len({e.reference for e in entries}) == len(entries)  # no entry twice
