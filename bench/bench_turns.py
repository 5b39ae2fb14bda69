"""Chat turns with a slow model and many turns in flight, on `hutch serve` as `make run` starts it.

Each section starts its own `hutch serve` (embedded PostgreSQL in a fresh data directory, the job worker
as its child process: the defaults of `make run`) with the fake OpenAI-compatible upstream of
`fake_upstream.py --think S` as its agents' model (`openai/gpt-4o-mini`), and the tests' fake Telegram
and Twilio servers. Everything listens on 127.0.0.1.

1. Telegram burst: 500 chats of one bot each send one message at the same moment (webhook POSTs with the
   secret token header); the model thinks 2 s per answer. Per chat: the time from the burst to the fake
   Telegram server receiving that chat's `sendMessage`. Target: every chat answered within 6 s.
2. WhatsApp burst: the same through Twilio's signed webhooks from 500 numbers, linked beforehand through
   the API (25 users with a personal agent each link 20 numbers one after the other, the users at once),
   timed until the fake Twilio receives the reply. Same target.
3. `POST /v1/chat/completions` with 256 calls in flight (aiohttp, each connection a loop of calls, one end
   user per connection), the model thinking 2 s: the upstream called directly, a Hutch agent without
   documents, one with a ready document (so each turn searches its knowledge), and the LiteLLM proxy of
   `bench_openai_api.py`, in alternating rounds. Ideal: 256 / 2 s = 128 req/s.
4. Zero think time: 2000 updates from 2000 chats posted as fast as possible (64 connections), the replies
   per second the worker sends (first to last `sendMessage`), then the webhook acknowledgement
   latency at a steady 200 updates/s for 10 s (`bench_telegram.py`'s pacing) while the worker answers.

The waits for replies are capped (`--cap`, 100 s by default) so a run always ends: chats still unanswered
then count as slower than the cap. A full run takes about 9.5 minutes when the worker runs four turns at a
time (the bursts wait out their cap) and about 6.5 when it keeps every turn in flight. `--quick` (or
`BENCH_QUICK=1`) runs a smaller version (100 chats, 64 calls in flight, one 8 s round, 400 updates) in
about four minutes; `--sections 1,3` picks sections. Hutch's logs go to `bench/results/turns/`, and the
exceptions they show are counted under each section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import httpx

import bench_telegram
import hutch
from bench_openai_api import (
    LITELLM_MASTER_KEY,
    MESSAGES,
    UPSTREAM_KEY,
    UPSTREAM_MODEL,
    litellm_proxy,
    percentile,
)
from common import (
    HUTCH,
    ROOT,
    LoadResult,
    clean_env,
    free_port,
    print_table,
    process,
    unlimited_plans,
    wait_for,
)

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, webhook_headers
from tests.fakes.twilio import FakeTwilioServer, inbound_whatsapp_webhook

LOGS = ROOT / "bench" / "results" / "turns"
PUBLIC_URL = "https://hutch.example"  # what Hutch signs and registers webhooks with; requests go to 127.0.0.1
TOKEN = "424242424:AAE_bench_token_for_the_turns_bot"
OPERATOR = "+14155238886"  # the WhatsApp sender of the deployment
PASSWORD = "bench password 1"
QUESTION = "How long is the warranty?"
ACK_TIMEOUT = 120  # seconds for one webhook acknowledgement
REQUEST_TIMEOUT = 120  # seconds for one chat completion
DRAIN_GRACE = 60  # seconds a round waits for its calls in flight after its time is up
POLL = 0.02
PACED_CONNECTIONS = 64  # bench_telegram's pacing client allows as many
update_ids = bench_telegram.update_ids  # one counter for every update sent, ours and bench_telegram's


@dataclass(frozen=True)
class Config:
    chats: int = 500
    think: float = 2.0
    target: float = 6.0
    cap: float = 100.0
    whatsapp_users: int = 25
    in_flight: int = 256
    rounds: int = 2
    round_seconds: float = 20.0
    drain_updates: int = 2000
    post_connections: int = 64
    paced_rate: int = 200
    paced_seconds: int = 10


FULL = Config()
QUICK = Config(
    chats=100,
    cap=60.0,
    whatsapp_users=10,
    in_flight=64,
    rounds=1,
    round_seconds=8.0,
    drain_updates=400,
    paced_seconds=3,
)


# --- processes --------------------------------------------------------------------------------------


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def fake_upstream(think: float, name: str) -> Iterator[str]:
    """The fake OpenAI-compatible upstream in a process of its own; its base URL (…/v1)."""
    port = free_port()
    args = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(port), "--think", str(think)]
    with process(args, clean_env(), LOGS / f"{name}-upstream.log"):
        base = f"http://127.0.0.1:{port}/v1"
        wait_for(f"{base}/models")
        yield base


@contextmanager
def hutch_serve(tmp: Path, name: str, upstream: str, **extra: str) -> Iterator[str]:
    """`hutch serve` as `make run` starts it (embedded PostgreSQL, its child worker); its base URL."""
    workdir = tmp / name
    workdir.mkdir()
    env = clean_env(
        HUTCH_DATA_DIR=str(workdir / "data"),
        HUTCH_LOG_LEVEL="WARNING",
        HUTCH_PLANS_FILE=str(unlimited_plans(workdir)),
        HUTCH_PUBLIC_URL=PUBLIC_URL,
        HUTCH_OPENAI_API_KEY=UPSTREAM_KEY,
        HUTCH_OPENAI_BASE_URL=upstream,
        HUTCH_EMBEDDING_PROVIDER="openai",  # the fake upstream embeds too (at once); no model to load
        **extra,
    )
    # BENCH_HUTCH_X=v sets HUTCH_X=v for the Hutch under test (to compare settings side by side).
    env.update({k.removeprefix("BENCH_"): v for k, v in os.environ.items() if k.startswith("BENCH_HUTCH_")})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = LOGS / f"{name}-hutch.log"
    # BENCH_SERVE_ARGS adds arguments to `hutch serve` (`--workers 2`: two API processes).
    with process(
        [*HUTCH, "serve", "--port", str(port), *os.environ.get("BENCH_SERVE_ARGS", "").split()], env, log
    ):
        try:
            wait_for(f"{base}/readyz", timeout=180)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; the end of {log}:\n{tail(log)}") from None
        yield base


EXCEPTION_LINE = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception|Timeout)): (.*)$")


def log_problems(log: Path) -> None:
    """The exceptions a Hutch log shows, most frequent first, and how many jobs failed."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return
    counts = Counter(
        f"{found[1]}: {found[2][:100]}" for found in map(EXCEPTION_LINE.match, lines) if found is not None
    )
    for text, n in counts.most_common(3):
        print(f"  {log.name}: {n} x {text}")
    failed_jobs = sum("job failed" in line for line in lines)
    if failed_jobs:
        print(f"  {log.name}: {failed_jobs} 'job failed' lines")


class Background(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@contextmanager
def serving(server: Background) -> Iterator[None]:
    server.start()
    try:
        yield
    finally:
        server.stop()


# --- replies at the fakes ---------------------------------------------------------------------------


class Replies:
    """The messages each address received, read as they come from a fake server's list of recorded
    calls (appended to by the fake's thread; slicing a list is atomic)."""

    def __init__(self, records: list[Any], extract: Callable[[Any], tuple[str, str] | None]) -> None:
        self.records = records
        self.extract = extract
        self.seen = len(records)  # what came before is not ours
        self.first: dict[str, float] = {}  # address → time.time() the first message arrived
        self.first_text: dict[str, str] = {}
        self.texts: dict[str, list[str]] = {}
        self.last_at = 0.0

    def poll(self) -> None:
        new = self.records[self.seen :]
        self.seen += len(new)
        for record in new:
            found = self.extract(record)
            if found is None:
                continue
            address, text = found
            if address not in self.first:
                self.first[address], self.first_text[address] = record.at, text
            self.texts.setdefault(address, []).append(text)
            self.last_at = max(self.last_at, record.at)

    def wait(self, addresses: set[str], deadline: float) -> None:
        """Until every address has a message, or time.time() passes the deadline."""
        while True:
            self.poll()
            if addresses <= self.first.keys() or time.time() > deadline:
                return
            time.sleep(POLL)


def telegram_reply(call: Any) -> tuple[str, str] | None:
    if call.method != "sendMessage" or "chat_id" not in call.params:
        return None
    return str(call.params["chat_id"]), str(call.params.get("text", ""))


def twilio_message(request: Any) -> tuple[str, str] | None:
    if request.method != "POST" or not request.path.endswith("/Messages.json"):
        return None
    to, body = request.params.get("To"), request.params.get("Body", "")
    return (str(to).removeprefix("whatsapp:"), str(body)) if to else None


# --- load -------------------------------------------------------------------------------------------


async def post_all_at_once(url: str, requests: list[tuple[bytes, dict[str, str]]]) -> list[tuple[int, float]]:
    """POST every request at the same moment, each on its own connection; (status, ms) of each (status 0:
    no answer)."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes, headers: dict[str, str]) -> tuple[int, float]:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            return status, (time.perf_counter() - t0) * 1000

        return await asyncio.gather(*(one(body, headers) for body, headers in requests))


async def post_over(
    url: str, requests: list[tuple[bytes, dict[str, str]]], connections: int
) -> tuple[LoadResult, list[int]]:
    """POST each request once over ``connections`` connections, as fast as they answer."""
    queue = iter(requests)
    latencies: list[float] = []
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for body, headers in queue:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        statuses.append(response.status)
                except (aiohttp.ClientError, TimeoutError):
                    statuses.append(0)
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    errors = sum(status != 200 for status in statuses)
    return LoadResult(len(requests), errors, seconds, latencies), statuses


@dataclass
class Window:
    """What one target's closed-loop rounds measured."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def closed_loop(
    url: str, headers: dict[str, str], body: Callable[[int], dict[str, Any]], in_flight: int, seconds: float
) -> Window:
    """``in_flight`` connections each send a call, wait for its answer and send the next, until ``seconds``
    have passed; then the calls in flight finish (or, after DRAIN_GRACE, count as errors). Throughput is the
    answered calls over the time to the last answer: with every connection looping, that is the rate the
    target sustains, whether the model or the target is the bottleneck."""
    window = Window()
    last_end = 0.0
    connector = aiohttp.TCPConnector(limit=in_flight)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def connection(n: int) -> None:
            nonlocal last_end
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, json=body(n)) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                window.statuses[status] = window.statuses.get(status, 0) + 1
                if status == 200:
                    window.ok += 1
                    window.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    last_end = max(last_end, time.perf_counter())
                else:
                    window.errors += 1
                    await asyncio.sleep(0.1)  # a failing target does not turn into a busy loop

        tasks = [asyncio.create_task(connection(n)) for n in range(in_flight)]
        _, pending = await asyncio.wait(tasks, timeout=seconds + DRAIN_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        window.errors += len(pending)
        window.seconds = (last_end or time.perf_counter()) - started
    return window


# --- set-up through the API -------------------------------------------------------------------------


def sign_up(client: httpx.Client, email: str) -> dict[str, str]:
    signup = client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    signup.raise_for_status()
    return {"Authorization": f"Bearer {signup.json()['access_token']}"}


def create_agent(client: httpx.Client, auth: dict[str, str], name: str, **extra: Any) -> dict[str, Any]:
    agent = client.post(
        "/api/v1/agents", json={"name": name, "model": f"openai/{UPSTREAM_MODEL}", **extra}, headers=auth
    )
    agent.raise_for_status()
    return dict(agent.json())


def connect_bot(base: str, telegram: FakeTelegramServer) -> tuple[str, dict[str, str]]:
    """An agent on the slow model with the bench bot connected: (webhook URL, webhook headers)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        auth = sign_up(client, "turns-telegram@example.com")
        agent = create_agent(client, auth, "Telegram turns")
        channel = client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": TOKEN}, headers=auth
        )
        channel.raise_for_status()
    webhook = telegram.webhook(TOKEN)
    assert webhook is not None
    return f"{base}/webhooks/telegram/{channel.json()['id']}", webhook_headers(webhook.secret_token)


def telegram_requests(
    senders: list[Sender], headers: dict[str, str], text: str = QUESTION
) -> list[tuple[bytes, dict[str, str]]]:
    return [
        (json.dumps(text_update(text, sender=sender, update_id=next(update_ids))).encode(), headers)
        for sender in senders
    ]


def warm_up_telegram(url: str, headers: dict[str, str], telegram: FakeTelegramServer, cap: float) -> None:
    """One chat answered first: the first turn's one-off costs stay out of the measurement."""
    sender = Sender(id=4_440_001, username="warm_up")
    replies = Replies(telegram.calls, telegram_reply)
    asyncio.run(post_all_at_once(url, telegram_requests([sender], headers, "Hello")))
    replies.wait({str(sender.id)}, time.time() + cap)
    if str(sender.id) not in replies.first:
        raise RuntimeError(f"the warm-up message got no reply within {cap:.0f} s")


# --- 1 and 2: bursts --------------------------------------------------------------------------------


@dataclass
class Burst:
    """One burst of messages from different chats: acknowledgements and first replies."""

    name: str
    chats: list[str]
    acks: list[tuple[int, float]]
    started: float
    replies: Replies

    def seconds(self) -> list[float]:
        """Seconds from the burst to each chat's first reply; inf for chats not answered."""
        return sorted(self.replies.first.get(chat, math.inf) - self.started for chat in self.chats)

    def row(self, cfg: Config) -> list[object]:
        times = self.seconds()
        answered = sum(t < math.inf for t in times)
        model = sum("Echo:" in self.replies.first_text.get(chat, "") for chat in self.chats)
        within = sum(t <= cfg.target for t in times)
        late = len(self.chats) - within
        return [
            self.name,
            f"{sum(status == 200 for status, _ in self.acks)}/{len(self.acks)}",
            percentile([ms for _, ms in self.acks], 99),
            f"{answered}/{len(self.chats)}",
            model,
            within,
            show(percentile(times, 50), cfg.cap),
            show(percentile(times, 99), cfg.cap),
            show(times[-1], cfg.cap),
            "met" if late == 0 else f"MISSED ({late} chats later)",
        ]


BURST_HEADER = [
    "channel",
    "acked 200",
    "ack p99 ms",
    "answered",
    "by the model",
    "within target",
    "p50 s",
    "p99 s",
    "max s",
    "target",
]


def show(seconds: float, cap: float) -> str:
    return f"> {cap:.0f} (unanswered)" if seconds == math.inf else f"{seconds:.2f}"


def print_burst(burst: Burst, cfg: Config, what: str) -> None:
    print_table(
        f"{what}; the model thinks {cfg.think:g} s per answer. Time from the burst to the reply at the fake "
        f"server, per chat (waited at most {cfg.cap:.0f} s). Target: every chat within {cfg.target:g} s",
        BURST_HEADER,
        [burst.row(cfg)],
    )


def telegram_burst(cfg: Config, tmp: Path) -> None:
    telegram = FakeTelegramServer()
    with (
        serving(telegram),
        fake_upstream(cfg.think, "1-telegram") as upstream,
        hutch_serve(tmp, "1-telegram", upstream, HUTCH_TELEGRAM_API_BASE=telegram.base_url) as base,
    ):
        telegram.add_bot(TOKEN, "turns_bench_bot")
        url, headers = connect_bot(base, telegram)
        warm_up_telegram(url, headers, telegram, cfg.cap)
        senders = [Sender(id=6_000_000 + n, username=f"burst{n}") for n in range(cfg.chats)]
        requests = telegram_requests(senders, headers)
        replies = Replies(telegram.calls, telegram_reply)
        started = time.time()
        acks = asyncio.run(post_all_at_once(url, requests))
        chats = [str(sender.id) for sender in senders]
        replies.wait(set(chats), started + cfg.cap)
    print_burst(
        Burst("Telegram", chats, acks, started, replies),
        cfg,
        f"1. Telegram burst: {cfg.chats} chats send one message each at the same moment",
    )


async def link_numbers(
    base: str, numbers: list[str], users: int, twilio: FakeTwilioServer, account_sid: str, auth_token: str
) -> list[str]:
    """Link the numbers through the API: ``users`` people with a personal agent each link their share of
    the numbers one after the other (a new code retires the previous one), the people at once. The
    numbers linked."""
    replies = Replies(twilio.requests, twilio_message)
    linked: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url=base, timeout=timeout) as session:

        async def person(n: int, mine: list[str]) -> None:
            async with session.post(
                "/api/v1/auth/signup", json={"email": f"turns-wa-{n}@example.com", "password": PASSWORD}
            ) as signup:
                signup.raise_for_status()
                auth = {"Authorization": f"Bearer {(await signup.json())['access_token']}"}
            agent_body = {"name": "Mine", "model": f"openai/{UPSTREAM_MODEL}", "audience": "personal"}
            async with session.post("/api/v1/agents", json=agent_body, headers=auth) as agent:
                agent.raise_for_status()
            for number in mine:
                link_body = {"channel": "whatsapp", "phone_e164": number}
                async with session.post("/api/v1/users/me/channel", json=link_body, headers=auth) as link:
                    link.raise_for_status()
                    code = (await link.json())["code"]
                signed = inbound_whatsapp_webhook(
                    f"{PUBLIC_URL}/webhooks/twilio/whatsapp",
                    auth_token,
                    f"LINK {code}",
                    from_number=number,
                    to_number=OPERATOR,
                    account_sid=account_sid,
                )
                async with session.post(
                    "/webhooks/twilio/whatsapp", data=urlencode(signed.params), headers=signed.headers
                ) as inbound:
                    inbound.raise_for_status()
                deadline = time.time() + 30
                while time.time() < deadline:
                    replies.poll()
                    if any("Linked!" in text for text in replies.texts.get(number, [])):
                        linked.append(number)
                        break
                    await asyncio.sleep(POLL)

        shares = [numbers[n::users] for n in range(users)]
        await asyncio.gather(*(person(n, share) for n, share in enumerate(shares) if share))
    return linked


def whatsapp_requests(
    numbers: list[str], account_sid: str, auth_token: str, text: str = QUESTION
) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for number in numbers:
        signed = inbound_whatsapp_webhook(
            f"{PUBLIC_URL}/webhooks/twilio/whatsapp",
            auth_token,
            text,
            from_number=number,
            to_number=OPERATOR,
            account_sid=account_sid,
        )
        requests.append((urlencode(signed.params).encode(), signed.headers))
    return requests


def whatsapp_burst(cfg: Config, tmp: Path) -> None:
    twilio = FakeTwilioServer()
    account = twilio.add_account()
    with (
        serving(twilio),
        fake_upstream(cfg.think, "2-whatsapp") as upstream,
        hutch_serve(
            tmp,
            "2-whatsapp",
            upstream,
            HUTCH_TWILIO_API_BASE=twilio.api_base,
            HUTCH_TWILIO_ACCOUNT_SID=account.sid,
            HUTCH_TWILIO_AUTH_TOKEN=account.auth_token,
            HUTCH_TWILIO_WHATSAPP_FROM=OPERATOR,
        ) as base,
    ):
        numbers = [f"+1555{3_000_000 + n:07d}" for n in range(cfg.chats + 1)]  # the last one warms up
        t0 = time.perf_counter()
        linked = asyncio.run(
            link_numbers(base, numbers, cfg.whatsapp_users, twilio, account.sid, account.auth_token)
        )
        link_seconds = time.perf_counter() - t0
        done = set(linked)
        warm, numbers = numbers[-1], [number for number in numbers[:-1] if number in done]
        if not numbers:
            raise RuntimeError("no number could be linked")
        url = f"{base}/webhooks/twilio/whatsapp"
        replies = Replies(twilio.requests, twilio_message)
        asyncio.run(post_all_at_once(url, whatsapp_requests([warm], account.sid, account.auth_token, "Hi")))
        replies.wait({warm}, time.time() + cfg.cap)
        requests = whatsapp_requests(numbers, account.sid, account.auth_token)
        replies = Replies(twilio.requests, twilio_message)
        started = time.time()
        acks = asyncio.run(post_all_at_once(url, requests))
        replies.wait(set(numbers), started + cfg.cap)
    print_burst(
        Burst("WhatsApp (Twilio)", numbers, acks, started, replies),
        cfg,
        f"2. WhatsApp burst: {len(numbers)} linked numbers send one message each at the same moment "
        f"({len(linked)} of {cfg.chats + 1} numbers linked through the API by {cfg.whatsapp_users} users "
        f"in {link_seconds:.0f} s)",
    )


# --- 3: /v1/chat/completions ------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: Callable[[int], dict[str, Any]]
    window: Window = field(default_factory=Window)

    def run(self, in_flight: int, seconds: float) -> Window:
        return asyncio.run(closed_loop(self.url, self.headers, self.body, in_flight, seconds))

    def add(self, round_: Window) -> None:
        self.window.ok += round_.ok
        self.window.errors += round_.errors
        self.window.seconds += round_.seconds
        self.window.latencies_ms += round_.latencies_ms
        for status, count in round_.statuses.items():
            self.window.statuses[status] = self.window.statuses.get(status, 0) + count


def set_up_agents(base: str, cap: float) -> tuple[str, str, str]:
    """Two agents on the slow model, the second with one small ready document, and a chat key:
    (slug without documents, slug with one, key)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        auth = sign_up(client, "turns-api@example.com")
        plain = create_agent(client, auth, "Without documents")
        informed = create_agent(client, auth, "With a document")
        document = client.post(
            f"/api/v1/agents/{informed['id']}/documents",
            json={"title": "Warranty", "content": WARRANTY, "format": "md"},
            headers=auth,
        )
        document.raise_for_status()
        deadline = time.perf_counter() + cap
        while True:
            state = client.get(
                f"/api/v1/agents/{informed['id']}/documents/{document.json()['id']}", headers=auth
            ).json()
            if state["status"] == "ready":
                break
            if state["status"] == "failed" or time.perf_counter() > deadline:
                raise RuntimeError(f"the document is {state['status']}: {state.get('error')}")
            time.sleep(0.1)
        key = client.post(
            "/api/v1/api-keys",
            json={"label": "turns", "scopes": ["chat"], "rate_limit_per_minute": 100_000},
            headers=auth,
        )
        key.raise_for_status()
        return str(plain["slug"]), str(informed["slug"]), str(key.json()["key"])


WARRANTY = """# Warranty

Every kettle comes with a two-year warranty from the day of purchase. Keep the receipt: we ask for it.

## What it covers

Faults of material and workmanship: a heating element that stops, a switch that sticks, a lid that no
longer closes. We repair the kettle or, when a repair costs more than the kettle, replace it.

## What it does not cover

Limescale, drops, a kettle boiled dry, and repairs by anyone but us. Descale every month in hard-water areas.
"""


def completions(cfg: Config, tmp: Path) -> None:
    ideal = cfg.in_flight / cfg.think
    with ExitStack() as running:
        upstream = running.enter_context(fake_upstream(cfg.think, "3-completions"))
        base = running.enter_context(hutch_serve(tmp, "3-completions", upstream))
        plain, informed, key = set_up_agents(base, cfg.cap)
        hutch_auth = {"Authorization": f"Bearer {key}"}

        def hutch_body(slug: str) -> Callable[[int], dict[str, Any]]:
            return lambda n: {"model": slug, "messages": MESSAGES, "user": f"{slug}-user-{n}"}

        targets = [
            Target(
                "upstream, direct",
                f"{upstream}/chat/completions",
                {"Authorization": f"Bearer {UPSTREAM_KEY}"},
                lambda n: {"model": UPSTREAM_MODEL, "messages": MESSAGES},
            ),
            Target(
                "Hutch, agent without documents", f"{base}/v1/chat/completions", hutch_auth, hutch_body(plain)
            ),
            Target(
                "Hutch, agent with one document",
                f"{base}/v1/chat/completions",
                hutch_auth,
                hutch_body(informed),
            ),
        ]
        litellm, skipped = running.enter_context(litellm_proxy(upstream, tmp))
        if litellm is not None:
            targets.append(
                Target(
                    "LiteLLM proxy",
                    f"{litellm}/v1/chat/completions",
                    {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
                    lambda n: {"model": "bench", "messages": MESSAGES},
                )
            )
        for target in targets:  # connections, clients, first turns: out of the measurement
            target.run(min(16, cfg.in_flight), 0.5)
        for round_number in range(cfg.rounds):
            shift = round_number % len(targets)  # each target goes first in turn
            for target in targets[shift:] + targets[:shift]:
                measured = target.run(cfg.in_flight, cfg.round_seconds)
                target.add(measured)
                print(
                    f"  round {round_number + 1}/{cfg.rounds}, {target.name}: {measured.rps:.1f} req/s, "
                    f"{measured.errors} errors",
                    flush=True,
                )

    rows = []
    for target in targets:
        w = target.window
        latencies = w.latencies_ms or [math.nan]
        failures = ", ".join(
            f"{n} x {status or 'no answer'}" for status, n in sorted(w.statuses.items()) if status != 200
        )
        rows.append(
            [
                target.name,
                w.rps,
                f"{w.rps / ideal:.0%}",
                percentile(latencies, 50),
                percentile(latencies, 99),
                w.ok,
                failures or "0",
            ]
        )
    print_table(
        f"3. POST /v1/chat/completions, {cfg.in_flight} calls in flight (aiohttp, each connection a "
        f"loop), the model thinks {cfg.think:g} s: {cfg.rounds} alternating round(s) of "
        f"{cfg.round_seconds:g} s per target; ideal {ideal:g} req/s",
        ["target", "req/s", "of ideal", "p50 ms", "p99 ms", "answered", "errors"],
        rows,
    )
    without, with_document = targets[1].window.rps, targets[2].window.rps
    ratio = f"{with_document / without:.2f}" if without else "n/a (no answers without documents)"
    print(f"  documents / no documents (req/s): {ratio}")
    if litellm is None:
        print(f"  LiteLLM not available ({skipped})")


# --- 4: zero think time -----------------------------------------------------------------------------


async def paced(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: int, connections: int
) -> tuple[LoadResult, Counter[str]]:
    """Open loop, as bench_telegram's pacing: a request every 1/rate s whatever the answers do, so queueing
    shows in the latency (of the acknowledged ones); failures are counted by kind, not raised."""
    latencies: list[float] = []
    problems: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        problems[f"HTTP {response.status}"] += 1
                        return
            except (aiohttp.ClientError, TimeoutError) as error:
                problems[error.__class__.__name__] += 1
                return
            latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        tasks = []
        for n, (body, headers) in enumerate(requests):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    return LoadResult(len(requests), sum(problems.values()), seconds, latencies), problems


def paced_alone(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: int, connections: int
) -> tuple[LoadResult, Counter[str]]:
    return asyncio.run(paced(url, requests, rate, connections))


def pipeline(cfg: Config, tmp: Path) -> None:
    telegram = FakeTelegramServer()
    with (
        serving(telegram),
        fake_upstream(0, "4-pipeline") as upstream,
        hutch_serve(tmp, "4-pipeline", upstream, HUTCH_TELEGRAM_API_BASE=telegram.base_url) as base,
    ):
        telegram.add_bot(TOKEN, "turns_bench_bot")
        url, headers = connect_bot(base, telegram)
        warm_up_telegram(url, headers, telegram, cfg.cap)
        senders = [Sender(id=7_000_000 + n, username=f"queue{n}") for n in range(cfg.drain_updates)]
        chats = [str(sender.id) for sender in senders]
        requests = telegram_requests(senders, headers)
        replies = Replies(telegram.calls, telegram_reply)
        started = time.time()
        posted, _ = asyncio.run(post_over(url, requests, cfg.post_connections))
        replies.wait(set(chats), started + cfg.cap)
        answered = [replies.first[chat] for chat in chats if chat in replies.first]
        # bench_telegram's updates: its 500 chats, its update ids (shared with ours, so none repeats)
        steady = [
            (json.dumps(update).encode(), headers)
            for update in bench_telegram.updates(cfg.paced_rate * cfg.paced_seconds)
        ]
        # The load generator gets a process of its own: here it would share the interpreter with the fake
        # Bot API's thread, busy taking the worker's replies, and time its own waits for the lock.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as alone:
            paced_run = alone.submit(paced_alone, url, steady, cfg.paced_rate, PACED_CONNECTIONS)
            acks, problems = paced_run.result()

    if answered:
        first, last = min(answered), max(answered)
        rate: object = len(answered) / (last - first) if last > first else math.nan
        last_after: object = last - started
    else:
        rate = last_after = "none answered"
    print_table(
        f"4. Zero think time: {cfg.drain_updates} Telegram updates from as many chats, posted as fast as "
        f"they are acknowledged over {cfg.post_connections} connections; replies drained by the "
        f"worker (waited at most {cfg.cap:.0f} s)",
        [
            "updates",
            "acked/s",
            "ack errors",
            "ack p99 ms",
            "answered",
            "replies/s, first to last sendMessage",
            "last reply after s",
        ],
        [
            [
                cfg.drain_updates,
                posted.rps,
                posted.errors,
                posted.percentile(99),
                f"{len(answered)}/{cfg.drain_updates}",
                rate,
                last_after,
            ]
        ],
    )
    ok = acks.latencies_ms or [math.nan]
    print_table(
        f"4. Webhook acknowledgement at a steady {cfg.paced_rate} updates/s for {cfg.paced_seconds} s "
        f"(open loop over at most {PACED_CONNECTIONS} connections, as bench_telegram, from a process of its "
        "own) while the worker answers them; latency of the acknowledged ones",
        ["updates", "acked 200", "p50 ms", "p99 ms", "max ms", "failures"],
        [
            [
                acks.requests,
                len(acks.latencies_ms),
                percentile(ok, 50),
                percentile(ok, 99),
                max(ok),
                ", ".join(f"{n} x {kind}" for kind, n in problems.most_common()) or "0",
            ]
        ],
    )


# --- main -------------------------------------------------------------------------------------------

SECTIONS: dict[int, tuple[str, Callable[[Config, Path], None]]] = {
    1: ("Telegram burst", telegram_burst),
    2: ("WhatsApp burst", whatsapp_burst),
    3: ("/v1/chat/completions in flight", completions),
    4: ("zero think time reply pipeline", pipeline),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat turns with a slow model and many turns in flight.")
    parser.add_argument("--quick", action="store_true", help="a smaller run (also BENCH_QUICK=1)")
    parser.add_argument("--cap", type=float, help="seconds to wait for the replies of a burst")
    parser.add_argument("--sections", default="1,2,3,4", help="which sections to run, e.g. 1,3")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cfg = QUICK if quick else FULL
    if args.cap is not None:
        cfg = replace(cfg, cap=args.cap)
    chosen = [int(part) for part in args.sections.split(",") if part.strip()]
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    failed = []
    run_started = time.perf_counter()
    print(f"Hutch {hutch.__version__} from {Path(hutch.__file__).parent}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp:
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        for number in chosen:
            name, section = SECTIONS[number]
            print(f"\n== {number}. {name}{' (quick)' if quick else ''}…", flush=True)
            started = time.perf_counter()
            try:
                section(cfg, Path(tmp))
            except Exception as error:  # noqa: BLE001 - one section failing leaves the others to run
                failed.append(number)
                traceback.print_exc(file=sys.stderr)
                print_table(
                    f"{number}. {name}",
                    ["section", "result"],
                    [[name, f"FAILED: {error.__class__.__name__}: {error}".splitlines()[0]]],
                )
            for log in sorted(LOGS.glob(f"{number}-*-hutch.log")):
                log_problems(log)
            print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\nbench_turns: {time.perf_counter() - run_started:.0f} s in all; Hutch's logs in {LOGS}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
