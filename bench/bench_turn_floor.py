"""What the SDKs a Telegram turn runs on cost by themselves: the floor under a job worker's CPU per turn.

`bench_turn_cost.py` measures the CPU a job worker spends per Telegram turn. Part of it is Hutch's own work
(admission, the prompt, metering, delivery); the rest is what the decided stack costs for the calls a turn
makes, whoever makes them. This measures that rest alone, in one process, each part with 64 calls in flight
as in a burst and its CPU read from the event loop's thread (the fakes and PostgreSQL run elsewhere):

- the job queue: procrastinate fetching and finishing a job that does nothing;
- the database: a turn's shape of statements through SQLAlchemy's ORM session (a locked read of mapped
  rows, an insert and an update returning a value in one transaction, then two updates on their own), and
  the same statements through asyncpg alone for comparison;
- the model: pydantic-ai's OpenAI model over the OpenAI SDK's aiohttp client, against the tests' fake
  upstream answering at once;
- Telegram: python-telegram-bot sending "typing…" and the answer over Hutch's shared aiohttp session,
  against the tests' fake Bot API.

Their sum is what a worker spends per turn before any of Hutch's own code runs.

    ../.venv/bin/python bench_turn_floor.py [--turns 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import procrastinate
import structlog
from openai import AsyncOpenAI, DefaultAioHttpClient
from procrastinate.psycopg_connector import PsycopgConnector
from procrastinate.types import JSONValue
from pydantic_ai.messages import ModelRequest, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from sqlalchemy import Integer, String, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from telegram import Bot
from telegram.constants import ChatAction

from common import ROOT, print_table

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one

from tests.fakes.llm import FakeLLMServer
from tests.fakes.telegram import FakeTelegramServer

from hutch.channels.telegram.transport import SharedTelegramSession
from hutch.db.embedded import EmbeddedPostgres

IN_FLIGHT = 64
TOKEN = "123456:floor-bench-token"


class Base(DeclarativeBase):
    pass


class Chat(Base):
    __tablename__ = "floor_chat"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String)
    handled: Mapped[int] = mapped_column(Integer, default=0)


class Note(Base):
    __tablename__ = "floor_note"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class Counter(Base):
    __tablename__ = "floor_counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


async def cpu_per_call(calls: int, one: Callable[[int], Awaitable[object]]) -> float:
    """CPU milliseconds of this thread per call, ``calls`` calls run with IN_FLIGHT at a time."""
    numbers = iter(range(calls))

    async def lane() -> None:
        for number in numbers:
            await one(number)

    for warm in range(IN_FLIGHT):  # connections, prepared statements and caches made before measuring
        await one(calls + warm)
    started = time.thread_time()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return (time.thread_time() - started) * 1000 / calls


async def sqlalchemy_turn(engine: AsyncEngine, calls: int) -> float:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    alone = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def turn(number: int) -> None:
        chat_id = number % 1000
        async with sessions() as session:
            chat = (
                await session.execute(select(Chat).where(Chat.id == chat_id).with_for_update())
            ).scalar_one()
            await session.execute(insert(Note).values(chat_id=chat.id, text="hello").returning(Note.id))
            await session.execute(
                update(Counter).where(Counter.id == 1).values(used=Counter.used + 1).returning(Counter.used)
            )
            await session.commit()
        async with alone.connect() as connection:
            await connection.execute(insert(Note).values(chat_id=chat_id, text="answer").returning(Note.id))
            await connection.execute(update(Chat).where(Chat.id == chat_id).values(handled=Chat.handled + 1))

    return await cpu_per_call(calls, turn)


async def core_turn(engine: AsyncEngine, calls: int) -> float:
    alone = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def turn(number: int) -> None:
        chat_id = number % 1000
        async with engine.begin() as connection:
            await connection.execute(select(Chat.__table__).where(Chat.id == chat_id).with_for_update())
            await connection.execute(insert(Note).values(chat_id=chat_id, text="hello").returning(Note.id))
            await connection.execute(
                update(Counter).where(Counter.id == 1).values(used=Counter.used + 1).returning(Counter.used)
            )
        async with alone.connect() as connection:
            await connection.execute(insert(Note).values(chat_id=chat_id, text="answer").returning(Note.id))
            await connection.execute(update(Chat).where(Chat.id == chat_id).values(handled=Chat.handled + 1))

    return await cpu_per_call(calls, turn)


async def asyncpg_turn(dsn: str, calls: int) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=IN_FLIGHT // 4, max_size=IN_FLIGHT // 4)

    async def turn(number: int) -> None:
        chat_id = number % 1000
        async with pool.acquire() as connection:
            async with connection.transaction():
                await connection.fetchrow(
                    "SELECT id, title, handled FROM floor_chat WHERE id = $1 FOR UPDATE", chat_id
                )
                await connection.fetchval(
                    "INSERT INTO floor_note (chat_id, text) VALUES ($1, $2) RETURNING id", chat_id, "hello"
                )
                await connection.fetchval(
                    "UPDATE floor_counter SET used = used + 1 WHERE id = 1 RETURNING used"
                )
            await connection.fetchval(
                "INSERT INTO floor_note (chat_id, text) VALUES ($1, $2) RETURNING id", chat_id, "answer"
            )
            await connection.execute("UPDATE floor_chat SET handled = handled + 1 WHERE id = $1", chat_id)

    try:
        return await cpu_per_call(calls, turn)
    finally:
        await pool.close()


def jobs(count: int) -> list[dict[str, JSONValue]]:
    return [{"number": number} for number in range(count)]


async def job_queue(conninfo: str, calls: int) -> float:
    connector = PsycopgConnector(conninfo=conninfo, min_size=4, max_size=IN_FLIGHT // 4)
    app = procrastinate.App(connector=connector)

    @app.task(name="floor_nothing", queue="floor")
    async def nothing(number: int) -> None:
        del number

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await nothing.batch_defer_async(*jobs(IN_FLIGHT))
        await app.run_worker_async(
            queues=["floor"], concurrency=IN_FLIGHT, wait=False, install_signal_handlers=False
        )
        await nothing.batch_defer_async(*jobs(calls))
        started = time.thread_time()
        await app.run_worker_async(
            queues=["floor"], concurrency=IN_FLIGHT, wait=False, install_signal_handlers=False
        )
        return (time.thread_time() - started) * 1000 / calls


async def model_call(base_url: str, calls: int) -> float:
    client = AsyncOpenAI(api_key="floor", base_url=f"{base_url}/v1", http_client=DefaultAioHttpClient())
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client))
    parameters = ModelRequestParameters()

    async def call(number: int) -> None:
        await model.request([ModelRequest(parts=[UserPromptPart(f"hello {number}")])], None, parameters)

    try:
        return await cpu_per_call(calls, call)
    finally:
        await client.close()


async def telegram_sends(telegram: FakeTelegramServer, calls: int) -> float:
    session = SharedTelegramSession()
    bot = Bot(TOKEN, base_url=f"{telegram.base_url}/bot", request=session, get_updates_request=session)
    await bot.initialize()
    chats = itertools.cycle(range(1, 1001))

    async def send(_: int) -> None:
        chat = next(chats)
        await bot.send_chat_action(chat, ChatAction.TYPING)
        await bot.send_message(chat, "an answer of a few words")

    try:
        return await cpu_per_call(calls, send)
    finally:
        await session.close()


async def measure(
    turns: int, database: str, llm: FakeLLMServer, telegram: FakeTelegramServer
) -> list[list[object]]:
    engine = create_async_engine(database.replace("postgresql://", "postgresql+asyncpg://"), pool_size=16)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(insert(Chat), [{"id": n, "title": f"chat {n}"} for n in range(1000)])
        await connection.execute(insert(Counter).values(id=1))
    queue = await job_queue(database, turns)
    orm = await sqlalchemy_turn(engine, turns)
    core = await core_turn(engine, turns)
    await engine.dispose()
    raw = await asyncpg_turn(database, turns)
    model = await model_call(llm.base_url, turns)
    sends = await telegram_sends(telegram, turns)
    floor = queue + orm + model + sends
    return [
        ["the job queue: fetch and finish one job", f"{queue:.2f}"],
        ["5 statements, 1 transaction, SQLAlchemy ORM session", f"{orm:.2f}"],
        ["  (the same through SQLAlchemy Core on a connection)", f"{core:.2f}"],
        ["  (the same through asyncpg alone)", f"{raw:.2f}"],
        ["one model call: pydantic-ai, OpenAI SDK over aiohttp", f"{model:.2f}"],
        ["two Telegram requests: python-telegram-bot", f"{sends:.2f}"],
        ["the floor: the sum (SQLAlchemy)", f"{floor:.2f}"],
        ["  turns/s one core could run at that floor", f"{1000 / floor:.0f}"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # as benched
    llm, telegram = FakeLLMServer(), FakeTelegramServer()
    telegram.add_bot(TOKEN, "floor_bench_bot")
    with tempfile.TemporaryDirectory(prefix="hutch-turn-floor-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "postgres")
        database = postgres.start("floor")
        llm.start()
        telegram.start()
        try:
            rows = asyncio.run(measure(args.turns, database, llm, telegram))
        finally:
            telegram.stop()
            llm.stop()
            postgres.stop()
    print_table(
        f"The SDKs under a Telegram turn, by themselves: CPU ms per turn, {IN_FLIGHT} in flight "
        f"({args.turns} each)",
        ["part", "CPU ms per turn"],
        rows,
    )


if __name__ == "__main__":
    main()
