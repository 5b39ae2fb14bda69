"""API fuzzing: schemathesis generates requests for every operation of Hutch's own OpenAPI schema and sends
them to a real `hutch serve` with Stripe, Twilio, Telegram and LiveKit configured on their fakes, as a
platform admin, as an ordinary user and as an API key. No answer may be a 5xx, except a 503 that names the
outside service that is down, and every answer must match the schema the operation documents.

Two phases:

- random examples (a few per operation; `HUTCH_FUZZ_EXAMPLES` asks for more);
- schemathesis's coverage phase: boundary and near-boundary values read off the schema (strings at the
  declared maximum length and one under, the smallest and largest integers, empty arrays, every enum
  value, optional fields left out one by one).

The default run sends the coverage phase's valid values once each, taking turns between the callers.
`HUTCH_FUZZ_LONG=1` (what `bench/fuzz_long.py` runs) sends every value, valid and invalid, as every caller,
with 50 random examples per operation unless `HUTCH_FUZZ_EXAMPLES` says otherwise.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import PostgresServer
from tests.fakes.livekit import API_KEY, API_SECRET, FakeLiveKitServer
from tests.fakes.stripe_api import TEST_API_KEY, FakeStripe
from tests.fakes.telegram import FakeTelegramServer
from tests.fakes.twilio import FakeTwilioServer
from tests.live_server import serve_hutch

LONG = os.environ.get("HUTCH_FUZZ_LONG", "") not in ("", "0")
EXAMPLES = int(os.environ.get("HUTCH_FUZZ_EXAMPLES", "50" if LONG else "4"))
PLATFORM_BOT = "424242:AAE_fuzz_platform_bot_token_value_x"
# A 503 is fine when it says which outside service is down; anything else in 5xx is a bug.
OUTSIDE_SERVICES = ("stripe", "telegram", "twilio", "whatsapp", "livekit", "model", "provider", "smtp")
CALLERS = ("admin", "user", "key")


@dataclass(frozen=True)
class FuzzTarget:
    base_url: str
    headers: dict[str, dict[str, str]]  # one per caller in CALLERS
    session: requests.Session  # kept-alive connections: a new one per request would double the run


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
            headers: dict[str, dict[str, str]] = {}
            # The first account of a deployment is its platform admin; the second is an ordinary customer.
            for caller, email in (("admin", "fuzz-admin@example.com"), ("user", "fuzz@example.com")):
                signup = httpx.post(
                    f"{served.base_url}/api/v1/auth/signup",
                    json={"email": email, "password": "fuzz-password-1", "org_name": f"Fuzz {caller}"},
                )
                headers[caller] = {"Authorization": f"Bearer {signup.json()['access_token']}"}
                httpx.post(
                    f"{served.base_url}/api/v1/agents", json={"name": "Fuzzy"}, headers=headers[caller]
                )
            key = httpx.post(
                f"{served.base_url}/api/v1/api-keys",
                json={"label": "fuzz", "scopes": ["read", "write", "chat"]},
                headers=headers["user"],
            )
            headers["key"] = {"X-API-Key": key.json()["key"]}
            with requests.Session() as session:
                yield FuzzTarget(served.base_url, headers, session)
    finally:
        livekit.stop()
        twilio.stop()


def no_server_error(ctx: object, response: schemathesis.Response, case: Case[Any]) -> bool | None:
    """No 5xx, except a 503 whose detail names the outside service that is down."""
    if response.status_code < 500:
        return None
    text = response.text.lower()
    if response.status_code == 503 and any(name in text for name in OUTSIDE_SERVICES):
        return None
    raise AssertionError(f"{response.status_code}: {response.text[:300]}")


def send(target: FuzzTarget, case: Case[Any], caller: str, failures: dict[str, str], conform: bool) -> None:
    checks: list[Callable[..., bool | None]] = [no_server_error]
    if conform:
        checks.append(response_schema_conformance)
    try:
        case.call_and_validate(headers=target.headers[caller], session=target.session, checks=checks)
    except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - every kind is collected and reported
        failures.setdefault(f"{case.operation.label} as {caller}", summary(failure))


def summary(failure: BaseException) -> str:
    text = str(failure)
    if isinstance(failure, BaseExceptionGroup):
        text = "\n".join(str(inner) for inner in failure.exceptions)
    reproduce = str(getattr(failure, "__notes__", ""))
    return (text + reproduce)[:1500]


def report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"{label}:\n{text}" for label, text in sorted(failures.items()))


def callers_for(label: str) -> tuple[str, ...]:
    # The admin console answers ordinary users and keys 403 before it reads its input; only the admin
    # reaches its boundaries.
    return ("admin",) if "/api/v1/admin/" in label else CALLERS


def test_no_server_error_and_answers_match_the_schema(fuzz_target: FuzzTarget) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.base_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1
        callers = callers_for(operation.label) if LONG else ("admin", "key")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def fuzz(case: Case[Any]) -> None:
            for caller in callers:  # noqa: B023 - run at once below, in this iteration
                send(fuzz_target, case, caller, failures, conform=True)

        fuzz()
    assert operations > 100
    assert not failures, report(failures)


def coverage_cases(schema: schemathesis.BaseSchema, modes: list[GenerationMode]) -> Iterator[Case[Any]]:
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        generation = schema.config.generation_for(operation=operation, phase="coverage")
        yield from schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=generation)


def test_boundary_values_never_break_the_server(fuzz_target: FuzzTarget) -> None:
    """The coverage phase: every operation at the edges of what its schema accepts (and, in the long run,
    just past them). Invalid values must be refused with a 4xx; valid ones must be served or refused, never
    crash a query (a string one character longer than its column, an integer past PostgreSQL's range)."""
    schema = schemathesis.openapi.from_url(f"{fuzz_target.base_url}/openapi.json")
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if LONG else [GenerationMode.POSITIVE]
    failures: dict[str, str] = {}
    turns = itertools.cycle(CALLERS)
    sent = 0
    for case in coverage_cases(schema, modes):
        callers = callers_for(case.operation.label)
        chosen = callers if LONG else (callers[0] if len(callers) == 1 else next(turns),)
        for caller in chosen:
            # Schemathesis's own invalid values are sometimes outside what the schema documents (a 422 for a
            # query it could not encode), so only the status rule holds for them.
            send(fuzz_target, case, caller, failures, conform=False)
            sent += 1
    assert sent > 1000
    assert not failures, report(failures)
