"""The inbox in the dashboard: the list with its filters, search and pages; a conversation's page; taking
over, replying, handing back, closing, reopening and exporting — only in one's own org, only with the form's
token, and only by the member who holds the conversation."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import OrgRole
from hutch.agents.models import Agent
from hutch.conversations.end_users import EndUserProfile
from hutch.conversations.inbox import HUMAN_REPLY_JOB
from hutch.conversations.models import Conversation, ConversationStatus, Message, MessageRole
from hutch.conversations.service import ConversationService
from hutch.settings import Settings
from hutch.web import inbox_pages
from tests.conftest import RecordingJobQueue, asgi_client
from tests.conversations.test_chat import new_agent
from tests.factories import Account, create_account
from tests.web.test_dashboard import csrf_of, log_in

U, A = MessageRole.USER, MessageRole.ASSISTANT
ADA = EndUserProfile("Ada Lovelace", "ada_l")


@pytest.fixture
async def owner(session: AsyncSession, settings: Settings) -> Account:
    return await create_account(session, settings, org_name="Acme")


@pytest.fixture
async def signed_in(client: AsyncClient, owner: Account) -> AsyncClient:
    await log_in(client, owner.user.email)
    return client


async def seed(
    session: AsyncSession,
    agent_id: str,
    channel: str,
    end_user: str,
    *lines: tuple[MessageRole, str],
    profile: EndUserProfile | None = None,
) -> Conversation:
    """A conversation as the channel's turns store it: each answer with its tokens and cost."""
    agent = await session.get(Agent, agent_id)
    assert agent is not None
    service = ConversationService(session)
    conversation = await service.open(agent, channel, end_user, profile=profile)
    for role, content in lines:
        answer = role is A
        await service.add(
            conversation,
            role,
            content,
            input_tokens=120 if answer else 0,
            output_tokens=30 if answer else 0,
            cost_micro_usd=4200 if answer else 0,
        )
    await session.commit()
    return conversation


def rows_of(html: str) -> list[str]:
    """The conversations listed, by the link to each."""
    return re.findall(r'<td><a href="/app/inbox/(cnv_\w+)">', html)


async def test_the_inbox_lists_every_conversation_with_filters_search_and_pages(
    signed_in: AsyncClient, owner: Account, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = signed_in
    ada = await new_agent(client, owner, name="Ada")
    bob = await new_agent(client, owner, name="Bob")
    parcel = await seed(session, ada["id"], "telegram", "telegram:1", (U, "Where is my parcel?"), profile=ADA)
    refund = await seed(session, ada["id"], "whatsapp", "whatsapp:+15551234567", (U, "I want a refund"))
    widget = await seed(session, bob["id"], "webchat", "webchat:chn_x:visitor-abcdef", (U, "Hello there"))
    await session.execute(
        update(Conversation).where(Conversation.id == refund.id).values(status=ConversationStatus.NEEDS_HUMAN)
    )
    await session.commit()

    page = await client.get("/app/inbox")
    assert page.status_code == 200
    assert '<a href="/app/inbox" aria-current="page">Inbox</a>' in page.text  # in the nav, marked current
    assert rows_of(page.text) == [widget.id, refund.id, parcel.id]  # newest activity first
    assert "Ada Lovelace" in page.text and "@ada_l" in page.text  # as Telegram knows her
    assert "WhatsApp +1555•••4567" in page.text and "Needs a person" in page.text

    assert rows_of((await client.get("/app/inbox", params={"channel": "whatsapp"})).text) == [refund.id]
    assert rows_of((await client.get("/app/inbox", params={"agent": bob["id"]})).text) == [widget.id]
    assert rows_of((await client.get("/app/inbox", params={"status": "needs_human"})).text) == [refund.id]
    assert rows_of((await client.get("/app/inbox", params={"q": "parcel"})).text) == [parcel.id]
    assert rows_of((await client.get("/app/inbox", params={"q": '"want a refund"'})).text) == [refund.id]
    searched = await client.get("/app/inbox", params={"q": "nothing-like-this"})
    assert rows_of(searched.text) == [] and "No conversation matches these filters." in searched.text
    today = parcel.created_at.date().isoformat()
    dated = await client.get("/app/inbox", params={"since": today, "until": today})
    assert len(rows_of(dated.text)) == 3
    assert rows_of((await client.get("/app/inbox", params={"since": "2099-01-01"})).text) == []

    agents_inbox = await client.get(f"/app/agents/{ada['id']}/inbox")
    assert agents_inbox.status_code == 200 and "Inbox of Ada" in agents_inbox.text
    assert rows_of(agents_inbox.text) == [refund.id, parcel.id]

    bad = await client.get("/app/inbox", params={"since": "yesterday", "status": "sleeping"})
    assert bad.status_code == 422
    assert 'id="since-error"' in bad.text and "Enter a date like 2026-12-31." in bad.text
    assert 'id="status-error"' in bad.text

    monkeypatch.setattr(inbox_pages, "PAGE_SIZE", 2)
    first = await client.get("/app/inbox")
    assert rows_of(first.text) == [widget.id, refund.id] and "Page 1 of 2" in first.text
    assert 'href="/app/inbox?page=2" rel="next"' in first.text
    second = await client.get("/app/inbox", params={"page": 2})
    assert rows_of(second.text) == [parcel.id] and 'rel="prev"' in second.text
    filtered = await client.get("/app/inbox", params={"since": today, "page": 1})
    assert f"since={today}&amp;page=2" in filtered.text  # the pages keep the filters


async def test_a_conversation_shows_the_thread_with_tokens_cost_and_the_person(
    signed_in: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(signed_in, owner, name="Shop")
    conversation = await seed(
        session,
        agent["id"],
        "telegram",
        "telegram:1",
        (U, "Where is my <b>parcel</b>?"),
        (A, "It left the warehouse today."),
        profile=ADA,
    )
    page = await signed_in.get(f"/app/inbox/{conversation.id}")
    assert page.status_code == 200
    assert "<h1>Ada Lovelace" in page.text and "@ada_l" in page.text
    assert "Where is my &lt;b&gt;parcel&lt;/b&gt;?" in page.text  # shown as text, never as markup
    assert "120 in · 30 out · $0.0042" in page.text  # each answer's tokens and cost
    assert f'data-events="/app/inbox/{conversation.id}/events?after=2"' in page.text  # live from here on
    assert '<div role="log"' in page.text and "Take over" in page.text
    assert 'href="/app/inbox" aria-current="page"' in page.text


async def test_an_answers_tool_calls_show_with_their_time_cost_arguments_and_result(
    signed_in: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(signed_in, owner, name="Scout")
    conversation = await seed(session, agent["id"], "api", "user:1", (U, "Find <it>"))
    search = {"name": "web_search", "args": {"query": "<it>"}, "result": "1. <b>It</b>", "ms": 412}
    calls = [
        search | {"metered": True, "cost_micro_usd": 5000},
        {"name": "current_time", "args": {}, "result": "Monday", "ms": 0},
    ]
    await ConversationService(session).add(conversation, A, "Found it.", tool_calls=calls)
    await session.commit()

    page = await signed_in.get(f"/app/inbox/{conversation.id}")

    assert "<summary>2 tool calls</summary>" in page.text
    assert "<code>web_search</code> · 412 ms · $0.0050" in page.text
    assert "<code>current_time</code> · 0 ms\n" in page.text  # not metered: no cost shown
    assert "&lt;b&gt;It&lt;/b&gt;" in page.text and "<b>It</b>" not in page.text  # results are text


async def test_take_over_reply_hand_back_close_reopen_and_export(
    signed_in: AsyncClient, owner: Account, session: AsyncSession, jobs: RecordingJobQueue
) -> None:
    client = signed_in
    agent = await new_agent(client, owner, name="Shop")
    conversation = await seed(session, agent["id"], "telegram", "telegram:1", (U, "Anyone?"), profile=ADA)
    base = f"/app/inbox/{conversation.id}"
    token = csrf_of(await client.get(base))

    taken = await client.post(f"{base}/takeover", data={"csrf": token})
    assert taken.status_code == 303 and taken.headers["location"] == f"{base}?note=taken"
    held = await client.get(taken.headers["location"])
    assert "You hold this conversation" in held.text and "Taken over" in held.text and "by you" in held.text
    assert '<label for="reply">Your reply' in held.text

    blank = await client.post(f"{base}/reply", data={"csrf": token, "content": "   "})
    assert blank.status_code == 422 and "the reply is blank" in blank.text
    sent = await client.post(f"{base}/reply", data={"csrf": token, "content": "Grace here, how can I help?"})
    assert sent.status_code == 303
    assert [name for name, _ in jobs.deferred] == [HUMAN_REPLY_JOB]  # delivered through Telegram
    shown = await client.get(base)
    assert re.search(r'<span class="who">You</span>\s*<span class="text">Grace here', shown.text)
    stored = await session.scalar(select(Message).where(Message.role == MessageRole.HUMAN))
    assert stored is not None and stored.author_id == owner.user.id

    released = await client.post(f"{base}/release", data={"csrf": token})
    assert released.headers["location"] == f"{base}?note=released"
    assert "Take over" in (await client.get(base)).text

    closed = await client.post(f"{base}/close", data={"csrf": token})
    assert closed.status_code == 303
    page = await client.get(base)
    assert "This conversation is closed" in page.text and "Reopen" in page.text
    refused = await client.post(f"{base}/takeover", data={"csrf": token})
    assert refused.status_code == 409 and "closed; reopen it first" in refused.text
    reopened = await client.post(f"{base}/reopen", data={"csrf": token})
    assert reopened.status_code == 303 and "Take over" in (await client.get(base)).text

    as_json = await client.get(f"{base}/export", params={"format": "json"})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    assert f'filename="conversation-{conversation.id}.json"' in as_json.headers["content-disposition"]
    exported = json.loads(as_json.text)
    assert [m["content"] for m in exported["messages"]] == ["Anyone?", "Grace here, how can I help?"]
    as_text = await client.get(f"{base}/export", params={"format": "text"})
    assert as_text.headers["content-type"].startswith("text/plain")
    assert "Ada Lovelace: Anyone?" in as_text.text and "Team: Grace here" in as_text.text


async def test_a_person_is_blocked_and_unblocked_from_their_conversation(
    signed_in: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    client = signed_in
    agent = await new_agent(client, owner, name="Shop")
    conversation = await seed(session, agent["id"], "telegram", "telegram:1", (U, "spam"), profile=ADA)
    base = f"/app/inbox/{conversation.id}"
    page = await client.get(base)
    token = csrf_of(page)
    assert "Block Ada Lovelace" in page.text
    blocked = await client.post(f"{base}/block", data={"csrf": token})
    assert blocked.status_code == 303 and blocked.headers["location"] == f"{base}?note=blocked"
    page = await client.get(base)
    assert '<span class="badge error">blocked</span>' in page.text and "Unblock Ada Lovelace" in page.text
    unblocked = await client.post(f"{base}/unblock", data={"csrf": token})
    assert unblocked.status_code == 303
    assert "Block Ada Lovelace" in (await client.get(base)).text
    refused = await client.post(f"{base}/block", data={})
    assert refused.status_code == 403  # the form's token is needed


async def test_another_orgs_conversation_is_not_found(
    signed_in: AsyncClient, owner: Account, session: AsyncSession, settings: Settings
) -> None:
    stranger = await create_account(session, settings, org_name="Elsewhere")
    theirs = await new_agent(signed_in, stranger, name="Secret agent")
    conversation = await seed(session, theirs["id"], "telegram", "telegram:9", (U, "private words"))
    base = f"/app/inbox/{conversation.id}"
    token = csrf_of(await signed_in.get("/app/inbox"))
    for path in (base, f"{base}/export", f"{base}/events", f"/app/agents/{theirs['id']}/inbox"):
        found = await signed_in.get(path)
        assert found.status_code == 404, path
        assert "private words" not in found.text
    for action in ("takeover", "reply", "release", "close", "reopen", "block", "unblock"):
        acted = await signed_in.post(f"{base}/{action}", data={"csrf": token, "content": "hi"})
        assert acted.status_code == 404, action
    listed = await signed_in.get("/app/inbox", params={"q": "private"})
    assert rows_of(listed.text) == []
    listed = await signed_in.get("/app/inbox", params={"agent": theirs["id"]})
    assert rows_of(listed.text) == []
    await session.refresh(conversation)
    assert conversation.taken_over_by is None and conversation.closed_at is None


async def test_a_member_cannot_act_on_a_conversation_another_member_holds(
    app: FastAPI, signed_in: AsyncClient, owner: Account, session: AsyncSession, settings: Settings
) -> None:
    agent = await new_agent(signed_in, owner, name="Shop")
    conversation = await seed(session, agent["id"], "telegram", "telegram:1", (U, "Anyone?"), profile=ADA)
    base = f"/app/inbox/{conversation.id}"
    token = csrf_of(await signed_in.get(base))
    assert (await signed_in.post(f"{base}/takeover", data={"csrf": token})).status_code == 303

    colleague = await create_account(session, settings, org=owner.org, role=OrgRole.MEMBER)
    async with asgi_client(app) as other:
        await log_in(other, colleague.user.email)
        page = await other.get(base)
        assert page.status_code == 200
        assert "Test User holds this conversation" in page.text
        assert "Your reply" not in page.text and ">Take over<" not in page.text
        theirs = csrf_of(page)
        for action in ("takeover", "reply", "release", "close"):
            refused = await other.post(f"{base}/{action}", data={"csrf": theirs, "content": "Me instead"})
            assert refused.status_code == 409, action
            assert 'role="alert"' in refused.text
    await session.refresh(conversation)
    assert conversation.taken_over_by == owner.user.id and conversation.closed_at is None
    assert await session.scalar(select(Message).where(Message.role == MessageRole.HUMAN)) is None


async def test_changes_need_the_forms_token(
    signed_in: AsyncClient, owner: Account, session: AsyncSession
) -> None:
    agent = await new_agent(signed_in, owner, name="Shop")
    conversation = await seed(session, agent["id"], "telegram", "telegram:1", (U, "Anyone?"))
    base = f"/app/inbox/{conversation.id}"
    for sent in ({}, {"csrf": "forged"}):
        refused = await signed_in.post(f"{base}/takeover", data=sent)
        assert refused.status_code == 403 and "did not come from this site" in refused.text
    await session.refresh(conversation)
    assert conversation.taken_over_by is None
