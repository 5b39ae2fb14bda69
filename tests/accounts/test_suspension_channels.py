"""A suspended organisation's agents answer every channel with a short notice and never ask the model;
reinstated, they answer again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hutch.channels.voice.worker import answer_turn
from hutch.conversations.models import Message
from hutch.turns.inbox import SUSPENDED_NOTICE
from tests.factories import create_account
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.telegram import Sender, text_update
from tests.turns.test_turns import PHONE, SHOP, Deployment, deployment, twilio  # noqa: F401 - fixtures


async def test_a_suspended_orgs_agents_answer_a_notice_on_every_channel_without_a_model_call(
    deployment: Deployment,  # noqa: F811
    fake_llm: FakeLLMServer,
) -> None:
    d = deployment
    async with d.resources.database.sessionmaker() as session:
        admin = await create_account(session, d.resources.settings, platform_admin=True)
    agent = await d.agent()
    personal = await d.agent(audience="personal")
    owner = d.owner.headers
    key = (
        await d.client.post("/api/v1/api-keys", json={"label": "k", "scopes": ["chat"]}, headers=owner)
    ).json()
    widget = await d.client.post(
        f"/api/v1/agents/{agent['id']}/channels/webchat", json={"allowed_origins": [SHOP]}, headers=owner
    )
    channel = await d.telegram_channel(agent["id"])
    linked = await d.client.post(
        "/api/v1/users/me/channel",
        json={"channel": "whatsapp", "phone_e164": PHONE, "agent_id": personal["id"]},
        headers=owner,
    )
    await d.whatsapp(f"LINK {linked.json()['code']}")
    await d.jobs.run_pending()
    stored_before = await stored_messages(d)

    suspended = await d.client.post(
        f"/api/v1/admin/orgs/{d.owner.org.id}/suspend", json={"reason": "Abuse report"}, headers=admin.headers
    )
    assert suspended.status_code == 200, suspended.text
    await d.jobs.run_pending()  # the runtimes' job: none to stop here
    asked = len(fake_llm.requests)

    await d.telegram_update(channel, text_update("hello", sender=Sender(id=42)))
    await d.jobs.run_pending()
    assert d.telegram.sent_texts(42)[-1] == SUSPENDED_NOTICE

    await d.whatsapp("hello")
    await d.jobs.run_pending()
    assert d.twilio.sent_bodies(f"whatsapp:{PHONE}")[-1] == SUSPENDED_NOTICE

    from_widget = await d.client.post(
        f"/api/v1/widget/{widget.json()['token']}/messages",
        json={"visitor_id": "v" * 24, "text": "hello"},
        headers={"Origin": SHOP},
    )
    assert from_widget.status_code == 403 and from_widget.json()["detail"] == SUSPENDED_NOTICE

    spoken = "".join([p async for p in answer_turn(d.resources, agent["id"], "user:caller", "hello")])
    assert spoken.startswith("Sorry")

    api = await d.client.post(
        "/v1/chat/completions",
        json={"model": agent["slug"], "messages": [{"role": "user", "content": "hello"}]},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert api.status_code == 403 and "suspended" in api.text
    chat = await d.client.post(f"/api/v1/agents/{agent['id']}/chat", json={"message": "hello"}, headers=owner)
    assert chat.status_code == 403 and "suspended" in chat.json()["detail"]

    assert len(fake_llm.requests) == asked  # no model was asked
    assert await stored_messages(d) == stored_before  # and nothing was stored or counted

    reinstated = await d.client.post(f"/api/v1/admin/orgs/{d.owner.org.id}/reinstate", headers=admin.headers)
    assert reinstated.status_code == 200
    await d.jobs.run_pending()
    fake_llm.script(ScriptedReply(content="Back at your service."))
    await d.telegram_update(channel, text_update("hello again", sender=Sender(id=42)))
    await d.jobs.run_pending()
    assert d.telegram.sent_texts(42)[-1] == "Back at your service."


async def stored_messages(d: Deployment) -> list[Any]:
    async with d.resources.database.sessionmaker() as session:
        return list((await session.scalars(select(Message.id).order_by(Message.id))).all())
