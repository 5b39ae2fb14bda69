"""Voice notes on Telegram: Hutch's own time around the transcription and the model, on a real `hutch serve`.

A `hutch serve` as `make run` starts it (its worker a child process) answers a Telegram bot whose agent uses
`openai/gpt-4o-mini` on the fake OpenAI-compatible upstream of `fake_upstream.py --think M`; voice notes are
transcribed by the tests' fake `/audio/transcriptions` endpoint, which takes T seconds for each. Voice notes
are sent one at a time (webhook POST with the secret token) and timed until the fake Telegram server
receives the reply; Hutch's overhead is that time minus T and M: the webhook, the job, `getFile` and the
download, storing the note with its message, the turn's two commits and the reply. Text messages are
timed the same way (minus M) for comparison. Target: voice-note overhead p99 under 200 ms.
`--quick` (or `BENCH_QUICK=1`) sends 20 of each instead of 100.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import (
    HUTCH,
    ROOT,
    clean_env,
    free_port,
    print_table,
    process,
    unlimited_plans,
    wait_for,
)
from hutch.db.embedded import EmbeddedPostgres

sys.path.insert(0, str(ROOT))  # `tests` is a package at the repository root, not an installed one
from tests.fakes.telegram import FakeTelegramServer, Sender, text_update, voice_update, webhook_headers
from tests.fakes.transcription import FakeTranscriptionServer, TranscriptReply

TOKEN = "434343434:AAE_bench_token_for_the_voice_bot"
TRANSCRIBE_SECONDS = 0.3
THINK_SECONDS = 0.5
VOICE = b"OggS" + bytes(16_000)  # about 8 s of Opus
update_ids = itertools.count(1)


def connect_bot(base: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup", json={"email": "voice@example.com", "password": "bench password 1"}
        )
        auth = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        agent = client.post(
            "/api/v1/agents", json={"name": "Voice bot", "model": "openai/gpt-4o-mini"}, headers=auth
        ).json()
        channel = client.post(
            f"/api/v1/agents/{agent['id']}/channels/telegram", json={"bot_token": TOKEN}, headers=auth
        )
        channel.raise_for_status()
        return str(channel.json()["id"])


def timed(
    url: str, headers: dict[str, str], telegram: FakeTelegramServer, n: int, voice: bool
) -> list[float]:
    """Milliseconds from posting each update to the reply reaching the fake Telegram (after 3 warm-ups)."""
    times = []
    with httpx.Client(timeout=30, headers=headers) as client:
        for _ in range(n + 3):
            if voice:
                file_id = telegram.add_file(VOICE, folder="voice")
                body = voice_update(file_id=file_id, file_size=len(VOICE), update_id=next(update_ids))
            else:
                body = text_update("Where is my order?", update_id=next(update_ids))
            before = len(telegram.sent_messages(Sender().id))
            t0 = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            while len(telegram.sent_messages(Sender().id)) == before:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError("no reply within 30 s")
                time.sleep(0.001)
            times.append((time.perf_counter() - t0) * 1000)
    return times[3:]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    n = 20 if parser.parse_args().quick else 100
    telegram = FakeTelegramServer()
    telegram.start()
    telegram.add_bot(TOKEN, "voice_bot")
    transcription = FakeTranscriptionServer()
    transcription.start()
    transcription.state.default = TranscriptReply(
        text="Where is my order?", seconds=8, delay=TRANSCRIBE_SECONDS
    )
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1"
    upstream_args = [sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(upstream_port)]
    upstream_args += ["--think", str(THINK_SECONDS)]
    with tempfile.TemporaryDirectory(prefix="hutch-bench-") as tmp, process(upstream_args, clean_env()):
        wait_for(f"{upstream}/models")
        os.chmod(tmp, 0o755)  # as root, PostgreSQL runs as 'pgserver' and must reach the data dir
        postgres = EmbeddedPostgres(Path(tmp) / "data")
        url = postgres.start()
        try:
            env = clean_env(
                HUTCH_DATABASE_URL=url,
                HUTCH_DATA_DIR=str(Path(tmp) / "data"),
                HUTCH_LOG_LEVEL="WARNING",
                HUTCH_TELEGRAM_API_BASE=telegram.base_url,
                HUTCH_PLANS_FILE=str(unlimited_plans(Path(tmp))),
                HUTCH_PUBLIC_URL="https://hutch.example",
                HUTCH_OPENAI_API_KEY="sk-bench",
                HUTCH_OPENAI_BASE_URL=upstream,
                HUTCH_TRANSCRIPTION_BASE_URL=transcription.api_base,
                HUTCH_TRANSCRIPTION_API_KEY="sk-bench-transcribe",
            )
            subprocess.run([*HUTCH, "db", "upgrade"], env=env, check=True, capture_output=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with process([*HUTCH, "serve", "--port", str(port)], env):
                wait_for(f"{base}/readyz")
                channel_id = connect_bot(base)
                webhook = telegram.webhook(TOKEN)
                assert webhook is not None
                headers = webhook_headers(webhook.secret_token)
                hook = f"{base}/webhooks/telegram/{channel_id}"
                text = timed(hook, headers, telegram, n, voice=False)
                voice = timed(hook, headers, telegram, n, voice=True)
        finally:
            postgres.stop()
            telegram.stop()
            transcription.stop()

    rows = []
    for name, times, waited in (
        ("text message", text, THINK_SECONDS * 1000),
        ("voice note", voice, (THINK_SECONDS + TRANSCRIBE_SECONDS) * 1000),
    ):
        overhead = [t - waited for t in times]
        rows.append([name, len(times), pct(times, 50), pct(times, 99), pct(overhead, 50), pct(overhead, 99)])
    print_table(
        f"Telegram, one at a time: model {THINK_SECONDS * 1000:.0f} ms, transcription "
        f"{TRANSCRIBE_SECONDS * 1000:.0f} ms (fakes); overhead = total - both; target: voice p99 < 200 ms",
        ["message", "n", "p50 ms", "p99 ms", "overhead p50 ms", "overhead p99 ms"],
        rows,
    )


if __name__ == "__main__":
    main()
