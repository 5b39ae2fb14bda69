"""Voice sessions on LiveKit: tokens against the time balance, signed webhooks, charging by the second."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from hutch.accounts.models import Org
from hutch.agents.models import Agent
from hutch.app import create_app
from hutch.billing.ledger import Ledger
from hutch.billing.models import LedgerKind, LedgerUnit
from hutch.channels.models import ExternalEvent
from hutch.channels.voice.jobs import WATCH_JOB
from hutch.channels.voice.models import VoiceSession
from hutch.channels.voice.service import VoiceSessions, time_note
from hutch.channels.voice.worker import HELD, TIME_WARNING, answer_turn, call_opening
from hutch.cli import app as cli_app
from hutch.conversations.models import Conversation, ConversationStatus
from hutch.db.engine import Database, UnitOfWork
from hutch.resources import Resources
from hutch.settings import Settings
from hutch.turns.flow import TurnFlow
from hutch.turns.tools import balance_words
from tests.conftest import RecordingJobQueue, asgi_client, build_test_resources
from tests.factories import Account, create_account
from tests.fakes.livekit import API_KEY, API_SECRET, FakeLiveKitServer, room_event, signed_webhook


@pytest.fixture(scope="module")
def livekit_server() -> Iterator[FakeLiveKitServer]:
    server = FakeLiveKitServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Voice:
    client: AsyncClient
    livekit: FakeLiveKitServer
    resources: Resources
    session: AsyncSession
    owner: Account
    agent_id: str

    @property
    def jobs(self) -> RecordingJobQueue:
        assert isinstance(self.resources.jobs, RecordingJobQueue)
        return self.resources.jobs

    async def grant(self, seconds: int) -> None:
        await Ledger(UnitOfWork(self.session)).post(
            self.owner.org.id, LedgerUnit.SECONDS, LedgerKind.GRANT, seconds, description="test"
        )
        await self.session.commit()

    async def seconds(self) -> int:
        return (await Ledger(UnitOfWork(self.session)).balance(self.owner.org.id)).seconds

    async def token(self, **headers: str) -> Any:
        return await self.client.post(
            "/api/v1/voice/token", json={"agent_id": self.agent_id}, headers=headers or self.owner.headers
        )

    async def deliver(self, *events: Any) -> list[Any]:
        for event in events:
            body, headers = signed_webhook(event)
            answer = await self.client.post("/webhooks/livekit", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        return await self.jobs.run_pending()

    async def watch(self) -> Any:
        return await self.jobs.execute(
            WATCH_JOB, {"timestamp": 0}, job_id=0, attempt=0, resources=self.jobs.worker_resources
        )

    async def stored(self, session_id: str) -> VoiceSession:
        found = await self.session.get(VoiceSession, session_id, populate_existing=True)
        assert found is not None
        return found


@pytest.fixture
async def voice(
    livekit_server: FakeLiveKitServer,
    settings: Settings,
    database: Database,
    database_url: str,
    session: AsyncSession,
) -> AsyncIterator[Voice]:
    livekit_server.reset()
    configured = settings.model_copy(
        update={
            "livekit_url": livekit_server.ws_url,
            "livekit_api_key": API_KEY,
            "livekit_api_secret": SecretStr(API_SECRET),
        }
    )
    resources = build_test_resources(configured, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post(
            "/api/v1/agents", json={"name": "Nora", "model": "demo/echo"}, headers=owner.headers
        )
        yield Voice(client, livekit_server, resources, session, owner, agent.json()["id"])


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


async def test_a_token_joins_one_room_as_the_user_for_a_while(voice: Voice) -> None:
    v = voice
    await v.grant(3600)
    answer = await v.token()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["url"] == v.livekit.ws_url and body["room"].startswith("hutch-vs_")
    assert body["seconds_left"] == 3600 and body["warning"] is None
    claims = jwt.decode(body["token"], API_SECRET, algorithms=["HS256"])
    assert claims["iss"] == API_KEY and claims["sub"] == f"user:{v.owner.user.id}"
    assert claims["video"] == {
        "roomJoin": True,
        "room": body["room"],
        "canPublish": True,
        "canSubscribe": True,
    } or (claims["video"]["roomJoin"] and claims["video"]["room"] == body["room"])
    assert "roomAdmin" not in claims["video"] and "roomCreate" not in claims["video"]
    assert claims["exp"] - claims["nbf"] == 3600
    assert json.loads(claims["metadata"]) == {"session_id": body["session_id"], "agent_id": v.agent_id}
    assert claims["roomConfig"]["agents"][0]["agentName"] == "hutch"

    second = (await v.token()).json()
    assert second["room"] != body["room"]  # a room per session


async def test_no_time_no_token_and_a_warning_when_little_is_left(voice: Voice) -> None:
    v = voice
    refused = await v.token()
    assert refused.status_code == 402 and "time card" in refused.json()["detail"]
    assert (await v.session.scalars(select(VoiceSession))).all() == []
    await v.grant(240)
    low = (await v.token()).json()
    assert low["seconds_left"] == 240 and "4 minutes" in low["warning"]

    await v.session.execute(update(Org).where(Org.id == v.owner.org.id).values(plan="talk"))
    await v.session.commit()
    unlimited = (await v.token()).json()
    assert unlimited["seconds_left"] is None and unlimited["warning"] is None


async def test_without_livekit_voice_says_what_to_set(
    settings: Settings, database: Database, database_url: str, session: AsyncSession
) -> None:
    resources = build_test_resources(settings, database, database_url)
    async with asgi_client(create_app(resources=resources)) as client:
        owner = await create_account(session, settings)
        agent = await client.post("/api/v1/agents", json={"name": "Nora"}, headers=owner.headers)
        answer = await client.post(
            "/api/v1/voice/token", json={"agent_id": agent.json()["id"]}, headers=owner.headers
        )
        assert answer.status_code == 503 and "HUTCH_LIVEKIT_URL" in answer.json()["detail"]


async def test_webhooks_must_be_signed_by_livekit(voice: Voice) -> None:
    v = voice
    event = room_event("room_finished", "hutch-vs_nothing")
    body, headers = signed_webhook(event)
    bad = {
        "tampered body": (body.replace(b"room_finished", b"room_started"), headers),
        "wrong secret": signed_webhook(event, secret="another-secret-of-a-decent-length-000000000"),
        "wrong key": signed_webhook(event, key="APIsomeoneElse"),
        "expired": signed_webhook(event, ttl_seconds=-60),
        "missing": (body, {"Content-Type": "application/webhook+json"}),
    }
    for case, (sent, sent_headers) in bad.items():
        answer = await v.client.post("/webhooks/livekit", content=sent, headers=sent_headers)
        assert answer.status_code == 401, case
    assert await v.session.get(ExternalEvent, ("livekit", event.id)) is None
    assert (await v.client.post("/webhooks/livekit", content=body, headers=headers)).status_code == 200
    assert await v.jobs.run_pending() == ["not a Hutch room"]


async def test_a_session_is_charged_its_exact_seconds_once(voice: Voice) -> None:
    v = voice
    await v.grant(600)
    issued = (await v.token()).json()
    room, me = issued["room"], f"user:{v.owner.user.id}"
    now = int(time.time())  # LiveKit stamps events in whole seconds
    joined = room_event("participant_joined", room, me, at=now - 95)
    assert await v.deliver(joined, room_event("participant_joined", room, "agent-AJ_x", at=now - 94)) == [
        "started",
        "ignored",  # the voice agent's own participant does not run the clock
    ]
    assert await v.deliver(room_event("participant_joined", room, me, at=now - 90)) == ["already started"]
    assert await v.deliver(room_event("participant_left", room, "agent-AJ_x", at=now - 1)) == ["ignored"]
    left = room_event("participant_left", room, me, at=now)
    assert await v.deliver(left) == ["ended"]
    body, headers = signed_webhook(left)
    assert (await v.client.post("/webhooks/livekit", content=body, headers=headers)).status_code == 200
    assert await v.jobs.run_pending() == []  # the same event again: stored once, applied once
    assert await v.deliver(room_event("room_finished", room, at=now)) == ["already ended"]

    stored = await v.stored(issued["session_id"])
    assert (stored.status.value, stored.seconds, stored.charged_seconds) == ("ended", 95, 95)
    assert await v.seconds() == 505

    listed = (await v.client.get("/api/v1/voice/sessions", headers=v.owner.headers)).json()
    [item] = [i for i in listed["items"] if i["id"] == issued["session_id"]]
    assert (item["seconds"], item["cost_seconds"], item["end_reason"]) == (95, 95, "left")
    assert listed["summary"]["sessions"] == 1 and listed["summary"]["average_minutes"] == 1.6


async def test_a_lost_leave_is_closed_at_the_last_sign_of_the_room(voice: Voice) -> None:
    v = voice
    await v.grant(600)
    issued = (await v.token()).json()
    v.livekit.open_room(issued["room"])
    await v.deliver(room_event("participant_joined", issued["room"], f"user:{v.owner.user.id}", at=ago(300)))
    assert (await v.watch())["gone"] == 0  # the room is there: the session runs on
    started = (await v.stored(issued["session_id"])).started_at
    assert started is not None
    await v.session.execute(
        update(VoiceSession)
        .where(VoiceSession.id == issued["session_id"])
        .values(last_seen_at=started + timedelta(seconds=120))
    )
    await v.session.commit()
    v.livekit.rooms.clear()  # the room closed and its "left" event never came
    assert (await v.watch())["gone"] == 1
    stored = await v.stored(issued["session_id"])
    assert (stored.end_reason, stored.seconds, stored.charged_seconds) == ("room gone", 120, 120)
    assert await v.seconds() == 480


async def test_running_out_of_time_warns_then_ends_the_room(voice: Voice) -> None:
    v = voice
    await v.grant(100)
    issued = (await v.token()).json()
    room = issued["room"]
    v.livekit.open_room(room)
    await v.deliver(room_event("participant_joined", room, f"user:{v.owner.user.id}", at=ago(30)))
    assert (await v.watch())["warned"] == 1  # 70 s left, under the 120 s warning
    [warning] = v.livekit.rooms[room].data
    assert json.loads(warning)["type"] == "time_warning" and 0 < json.loads(warning)["seconds_left"] <= 70
    assert (await v.watch())["warned"] == 0  # once

    await v.session.execute(
        update(VoiceSession)
        .where(VoiceSession.id == issued["session_id"])
        .values(started_at=datetime.now(UTC) - timedelta(seconds=150))
    )
    await v.session.commit()
    assert (await v.watch())["ended"] == 1
    assert [r.room for r in v.livekit.called("DeleteRoom")] == [room] and room not in v.livekit.rooms
    stored = await v.stored(issued["session_id"])
    assert stored.end_reason == "out of time" and stored.seconds >= 150 and stored.charged_seconds == 100
    assert await v.seconds() == 0
    assert (await v.token()).status_code == 402


async def test_concurrent_sessions_draw_on_one_balance(voice: Voice) -> None:
    v = voice
    await v.grant(200)
    first, second = (await v.token()).json(), (await v.token()).json()
    me = f"user:{v.owner.user.id}"
    for issued in (first, second):
        v.livekit.open_room(issued["room"])
        await v.deliver(room_event("participant_joined", issued["room"], me, at=ago(80)))
    third = await v.token()
    assert third.status_code == 200 and third.json()["seconds_left"] <= 40  # 200 - 2 x 80
    await v.session.execute(
        update(VoiceSession)
        .where(VoiceSession.id.in_([first["session_id"], second["session_id"]]))
        .values(started_at=datetime.now(UTC) - timedelta(seconds=120))
    )
    await v.session.commit()
    assert (await v.token()).status_code == 402  # 200 - 2 x 120 < 0, though nothing is charged yet
    assert (await v.watch())["ended"] == 2
    charged = [(await v.stored(i["session_id"])).charged_seconds for i in (first, second)]
    # The first session closed takes what it used; the second gets what is left: the balance, no more.
    assert sum(charged) == 200 and 120 <= max(charged) <= 122 and await v.seconds() == 0


async def test_unlimited_voice_is_not_charged(voice: Voice) -> None:
    v = voice
    await v.session.execute(update(Org).where(Org.id == v.owner.org.id).values(plan="talk"))
    await v.session.commit()
    issued = (await v.token()).json()
    me = f"user:{v.owner.user.id}"
    await v.deliver(
        room_event("participant_joined", issued["room"], me, at=ago(60)),
        room_event("participant_left", issued["room"], me, at=ago(0)),
    )
    stored = await v.stored(issued["session_id"])
    assert (stored.seconds, stored.charged_seconds) == (60, 0)
    assert await v.seconds() == 0


async def test_the_voice_agent_knows_the_time_left_and_answers_through_the_engine(voice: Voice) -> None:
    v = voice
    assert "about 15 minutes left" in time_note(900)
    assert "nearly up" in time_note(90) and "not tracked" in time_note(None)

    await v.grant(900)
    uow = UnitOfWork(v.session, v.resources.jobs)
    sessions = VoiceSessions(uow, v.resources.plans, v.resources.settings)
    words = await balance_words(uow, v.resources, v.owner.org.id, sessions.time_left)
    assert "15 minutes of prepaid time left" in words
    flow = TurnFlow(uow, v.resources, time_left=sessions.time_left)
    agent = await v.session.get(Agent, v.agent_id)
    assert agent is not None
    turn = await flow.begin_unstored(agent, "voice", "user:x", "hi")
    request = flow.request(turn, extra_instructions=[time_note(await sessions.time_left(v.owner.org.id))])
    assert "You have about 15 minutes left" in str(request.instructions)

    spoken = [piece async for piece in answer_turn(v.resources, v.agent_id, "user:caller", "Hello there")]
    assert "".join(spoken) == "[Demo — no AI] You said: Hello there"
    conversation = await v.session.scalar(select(Conversation).where(Conversation.agent_id == v.agent_id))
    assert conversation is not None and (conversation.channel, conversation.end_user) == (
        "voice",
        "user:caller",
    )
    # A member takes the call's conversation over: the caller hears so, and the agent is not asked.
    conversation.status, conversation.taken_over_by = ConversationStatus.TAKEN_OVER, v.owner.user.id
    await v.session.commit()
    spoken = [piece async for piece in answer_turn(v.resources, v.agent_id, "user:caller", "Still there?")]
    assert spoken == [HELD]


async def test_the_time_warning_is_spoken_in_the_orgs_language(voice: Voice) -> None:
    v = voice
    await v.grant(600)
    left, warning = await call_opening(v.resources, v.agent_id)
    assert left == 600 and warning == TIME_WARNING
    spanish = await v.client.patch("/api/v1/org", json={"language": "es"}, headers=v.owner.headers)
    assert spanish.status_code == 200
    assert await call_opening(v.resources, v.agent_id) == (
        600,
        "Para que lo sepas: tu tiempo está a punto de terminarse.",
    )


def test_the_voice_worker_says_what_it_needs() -> None:
    result = CliRunner().invoke(cli_app, ["voice-agent"])
    assert result.exit_code == 1 and "hutch[voice]" in result.output


async def test_one_caller_past_the_per_person_limit_hears_why_while_others_are_answered(voice: Voice) -> None:
    v = voice
    await v.session.execute(update(Org).where(Org.id == v.owner.org.id).values(plan="fairuse"))  # 3 a minute
    await v.session.commit()

    async def speak(caller: str, words: str) -> str:
        return "".join([piece async for piece in answer_turn(v.resources, v.agent_id, caller, words)])

    for n in range(3):
        assert await speak("user:eager", f"question {n}") == f"[Demo — no AI] You said: question {n}"
    assert await speak("user:eager", "one more") == (
        "You are sending messages faster than I can answer. Please wait a minute and try again."
    )
    assert await speak("user:calm", "hello") == "[Demo — no AI] You said: hello"  # someone else is answered
    listed = (await v.client.get("/api/v1/conversations", headers=v.owner.headers)).json()["items"]
    notes = {item["end_user"]["limited_note"] for item in listed}
    assert notes == {None, "went past 3 messages a minute per person (Nora)"}  # the owner sees who


async def test_a_blocked_caller_gets_no_token_and_no_time_runs(voice: Voice) -> None:
    v = voice
    await v.grant(600)
    key = await v.client.post(
        "/api/v1/api-keys", json={"label": "site", "scopes": ["chat"]}, headers=v.owner.headers
    )
    site = {"X-API-Key": key.json()["key"]}
    caller = f"key:{key.json()['id']}"  # the caller a token names, and whom the call's turns answer
    assert await answer_turn_text(v, caller, "hello") == "[Demo — no AI] You said: hello"
    [item] = (await v.client.get("/api/v1/conversations", headers=v.owner.headers)).json()["items"]
    blocked = await v.client.post(
        f"/api/v1/end-users/{item['end_user']['id']}/block", headers=v.owner.headers
    )
    assert blocked.status_code == 200

    refused = await v.token(**site)
    assert refused.status_code == 403 and "blocked" in refused.json()["detail"]
    assert (await v.session.scalars(select(VoiceSession))).all() == []  # no room, no clock
    assert await v.seconds() == 600
    assert (await v.token()).status_code == 200  # a member's own call goes on

    unblocked = await v.client.delete(
        f"/api/v1/end-users/{item['end_user']['id']}/block", headers=v.owner.headers
    )
    assert unblocked.status_code == 204
    assert (await v.token(**site)).status_code == 200


async def answer_turn_text(v: Voice, caller: str, words: str) -> str:
    return "".join([piece async for piece in answer_turn(v.resources, v.agent_id, caller, words)])
