"""Telegram requests over the shared aiohttp session: errors reach python-telegram-bot as its own."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram.error import NetworkError, TimedOut

from hutch.channels.telegram.gateway import TelegramGateway
from tests.fakes.telegram import FakeTelegramServer

TOKEN = "7000001:transport-test"
OTHER = "7000002:transport-test"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def slow_api() -> AsyncIterator[str]:
    """A Bot API that takes 2 s to answer anything."""

    async def answer(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_every_bot_shares_one_session_and_the_gateway_closes_it(
    telegram_server: FakeTelegramServer,
) -> None:
    telegram_server.reset()
    telegram_server.add_bot(TOKEN, "first_bot")
    telegram_server.add_bot(OTHER, "second_bot")
    gateway = TelegramGateway(telegram_server.base_url)
    try:
        assert (await gateway.identify(TOKEN)).username == "first_bot"
        assert (await gateway.identify(OTHER)).username == "second_bot"
        async with gateway.bot(TOKEN) as first, gateway.bot(OTHER) as second:
            assert first.request is second.request
            session = first.request.session()  # type: ignore[attr-defined]
            await first.shutdown()  # a bot leaving the cache leaves the session to the others
            assert not session.closed
    finally:
        await gateway.close()
    assert session.closed
    # Used again (a new event loop, a restarted worker), the gateway makes a new session.
    assert (await gateway.identify(TOKEN)).username == "first_bot"
    await gateway.close()


async def test_an_unreachable_api_is_a_network_error_and_a_slow_one_a_timeout(slow_api: str) -> None:
    unreachable = TelegramGateway(f"http://127.0.0.1:{closed_port()}")
    slow = TelegramGateway(slow_api)
    try:
        async with unreachable.bot(TOKEN) as bot:
            with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError"):
                await bot.get_me()
        async with slow.bot(TOKEN) as bot:
            with pytest.raises(TimedOut):
                await bot.get_me(read_timeout=0.2)
    finally:
        await unreachable.close()
        await slow.close()
