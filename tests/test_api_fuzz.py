"""API fuzzing: schemathesis generates requests for every operation of Hutch's own OpenAPI schema, sent as a
signed-in user and as an API key to a real `hutch serve` (with every outside service on its fake). No answer
may be a 5xx, and every answer must match the schema the operation documents. A few examples per operation
keep it quick; `HUTCH_FUZZ_EXAMPLES` asks for more."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import PostgresServer
from tests.fakes.livekit import API_KEY, API_SECRET, FakeLiveKitServer
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.telegram import FakeTelegramServer
from tests.fakes.twilio import FakeTwilioServer
from tests.live_server import serve_hutch

EXAMPLES = int(os.environ.get("HUTCH_FUZZ_EXAMPLES", "4"))
PLATFORM_BOT = "424242:AAE_fuzz_platform_bot_token_value_x"


@dataclass(frozen=True)
class FuzzTarget:
    base_url: str
    headers: dict[str, dict[str, str]]  # "user" and "key"


@pytest.fixture(scope="module")
def fuzz_target(
    postgres: PostgresServer,
    migrated_template: str,
    fake_stripe_server: FakeStripe,
    telegram_server: FakeTelegramServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FuzzTarget]:
    telegram_server.add_bot(PLATFORM_BOT, "fuzz_platform_bot")
    livekit, twilio = FakeLiveKitServer(), FakeTwilioServer()
    livekit.start()
    twilio.start()
    account = twilio.add_account()
    services = {
        "HUTCH_STRIPE_API_BASE": fake_stripe_server.base_url,
        "HUTCH_STRIPE_SECRET_KEY": TEST_API_KEY,
        "HUTCH_STRIPE_WEBHOOK_SECRET": "whsec_fuzz0123456789abcdef0123456789",
        "HUTCH_TELEGRAM_API_BASE": telegram_server.base_url,
        "HUTCH_TELEGRAM_BOT_TOKEN": PLATFORM_BOT,
        "HUTCH_LIVEKIT_URL": livekit.ws_url,
        "HUTCH_LIVEKIT_API_KEY": API_KEY,
        "HUTCH_LIVEKIT_API_SECRET": API_SECRET,
        "HUTCH_TWILIO_API_BASE": twilio.api_base,
        "HUTCH_TWILIO_ACCOUNT_SID": account.sid,
        "HUTCH_TWILIO_AUTH_TOKEN": account.auth_token,
        "HUTCH_TWILIO_WHATSAPP_FROM": "whatsapp:+15550001000",
        "HUTCH_PUBLIC_URL": "https://hutch.example",
    }
    try:
        with serve_hutch(postgres, migrated_template, tmp_path_factory.mktemp("fuzz"), **services) as served:
            signup = httpx.post(
                f"{served.base_url}/api/v1/auth/signup",
                json={"email": "fuzz@example.com", "password": "fuzz-password-1", "org_name": "Fuzz"},
            )
            user = {"Authorization": f"Bearer {signup.json()['access_token']}"}
            httpx.post(f"{served.base_url}/api/v1/agents", json={"name": "Fuzzy"}, headers=user)
            key = httpx.post(f"{served.base_url}/api/v1/api-keys", json={"label": "fuzz"}, headers=user)
            yield FuzzTarget(served.base_url, {"user": user, "key": {"X-API-Key": key.json()["key"]}})
    finally:
        livekit.stop()
        twilio.stop()


def test_no_server_error_and_answers_match_the_schema(fuzz_target: FuzzTarget) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.base_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def send(case: schemathesis.Case) -> None:
            for caller in ("user", "key"):  # the same request, as a signed-in user and as an API key
                try:
                    case.call_and_validate(
                        headers=fuzz_target.headers[caller],
                        checks=[not_a_server_error, response_schema_conformance],
                    )
                except Exception as failure:  # noqa: BLE001 - every kind is collected and reported below
                    failures.setdefault(f"{case.operation.label} as {caller}", str(failure)[:1500])

        send()
    assert operations > 100
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in sorted(failures.items()))
