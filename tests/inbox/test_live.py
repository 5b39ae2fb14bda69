"""On a deployment whose requests really commit: two members racing for one conversation, and a new message
reaching an open event stream."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import uvicorn

from hutch.accounts.models import OrgRole
from hutch.app import create_app
from hutch.settings import Settings
from tests.conftest import LiveDeployment
from tests.factories import create_account
from tests.fakes.server import free_port


async def _chat(live: LiveDeployment, settings: Settings) -> tuple[Any, Any, str]:
    owner = await create_account(live.session, settings)
    colleague = await create_account(live.session, settings, org=owner.org, role=OrgRole.MEMBER)
    await live.session.commit()
    agent = (await live.client.post("/api/v1/agents", json={"name": "Ada"}, headers=owner.headers)).json()
    said = await live.client.post(
        f"/api/v1/agents/{agent['id']}/chat", json={"message": "hi"}, headers=owner.headers
    )
    assert said.status_code == 200, said.text
    return owner, colleague, said.json()["conversation_id"]


async def test_two_members_cannot_take_the_same_conversation_at_once(
    live: LiveDeployment, settings: Settings
) -> None:
    owner, colleague, conversation_id = await _chat(live, settings)
    path = f"/api/v1/conversations/{conversation_id}/takeover"
    for _ in range(5):
        results = await asyncio.gather(
            live.client.post(path, headers=owner.headers), live.client.post(path, headers=colleague.headers)
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409], [r.text for r in results]
        winner = next(r for r in results if r.status_code == 200).json()["taken_over_by"]
        holder = owner if winner == owner.user.id else colleague
        released = await live.client.post(
            f"/api/v1/conversations/{conversation_id}/release", headers=holder.headers
        )
        assert released.status_code == 200


async def test_a_new_message_reaches_an_open_stream_within_a_second(
    live: LiveDeployment, settings: Settings
) -> None:
    owner, _, conversation_id = await _chat(live, settings)
    base = f"/api/v1/conversations/{conversation_id}"
    await live.client.post(f"{base}/takeover", headers=owner.headers)
    received: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def listen(http: httpx.AsyncClient) -> None:
        async with http.stream("GET", f"{base}/events", headers=owner.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    await received.put((time.perf_counter(), json.loads(line[6:])))

    # A real HTTP server: the in-process transport hands a response over only once it has ended.
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(resources=live.resources), port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await wait_started(server)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    listener = asyncio.create_task(listen(http))
    try:
        await asyncio.sleep(0.5)  # the stream is open
        checked_out = live.resources.database.engine.pool.checkedout()  # type: ignore[attr-defined]
        assert checked_out == 0  # an open stream holds no pooled connection
        sent_at = time.perf_counter()
        reply = await live.client.post(
            f"{base}/reply", json={"content": "Live from the team"}, headers=owner.headers
        )
        assert reply.status_code == 201
        arrived_at, message = await asyncio.wait_for(received.get(), 5)
        assert message["content"] == "Live from the team" and message["role"] == "human"
        assert arrived_at - sent_at < 1.0
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await http.aclose()
        server.should_exit = True
        await serving


async def wait_started(server: uvicorn.Server) -> None:
    for _ in range(100):
        if server.started:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")
