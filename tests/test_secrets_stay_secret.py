"""Passwords, tokens and keys never reach the logs, nor any answer after the one that creates them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.accounts.models import RefreshToken, User
from hutch.apikeys.models import ApiKey
from hutch.core.logging import configure_logging
from hutch.db.engine import create_engine
from tests.conftest import RecordingJobQueue
from tests.fakes.smtp import SmtpServer


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(json_logs=True, level="DEBUG")
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    configure_logging(json_logs=False, level="INFO")


async def test_a_whole_account_lifecycle_leaks_nothing(
    client: AsyncClient,
    jobs: RecordingJobQueue,
    mailbox: SmtpServer,
    log_output: io.StringIO,
    session: AsyncSession,
) -> None:
    password = "my-very-own-password"
    signup = await client.post(
        "/api/v1/auth/signup", json={"email": "quiet@example.com", "password": password}
    )
    tokens = signup.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = await client.post("/api/v1/api-keys", json={"label": "ci"}, headers=headers)
    key = created.json()["key"]
    await jobs.run_pending()
    link_token = mailbox.wait_for("quiet@example.com")[0].token()

    answers = [
        await client.get("/api/v1/users/me", headers=headers),
        await client.get("/api/v1/api-keys", headers=headers),
        await client.get("/api/v1/api-keys/current", headers={"X-API-Key": key}),
        await client.get("/api/v1/org", headers={"X-API-Key": key}),
        await client.post("/api/v1/auth/login", json={"email": "quiet@example.com", "password": password}),
        await client.post(
            "/api/v1/auth/login", json={"email": "quiet@example.com", "password": "wrong-one!"}
        ),
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        await client.post("/api/v1/auth/verify-email", json={"token": link_token}),
        await client.post("/api/v1/auth/signup", json={"email": "quiet@example.com", "password": password}),
        await client.post("/api/v1/auth/signup", json={"email": "x@example.com", "password": "password1"}),
    ]
    secrets = {
        "password": password,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "api key": key,
        "emailed token": link_token,
    }
    # What is stored in their place is key material too: the password's hash, the key's and the tokens'
    # digests must never be answered or logged either.
    user = await session.scalar(select(User).where(User.email == "quiet@example.com"))
    assert user is not None
    secrets["password hash"] = user.password_hash
    secrets["api key hash"] = str(
        await session.scalar(select(ApiKey.key_hash).where(ApiKey.created_by_user_id == user.id))
    )
    for n, digest in enumerate(
        await session.scalars(select(RefreshToken.token_hash).where(RefreshToken.user_id == user.id))
    ):
        secrets[f"refresh token hash {n}"] = digest
    logs = log_output.getvalue()
    assert "quiet@example.com" in logs or "POST" in logs  # the logs did capture the traffic
    for name, secret in secrets.items():
        assert secret not in logs, f"the {name} was logged"
        for answer in answers:
            assert secret not in answer.text, f"the {name} came back in {answer.request.url}"


async def test_a_failed_statement_names_no_values(database_url: str) -> None:
    """SQL errors end up in the log with the 500 they become: they carry the statement, never its values."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failure:
                await conn.execute(
                    text("SELECT 1 / (length(CAST(:value AS text)) * 0)"), {"value": "hk_not-a-number-secret"}
                )
    finally:
        await engine.dispose()
    assert "hk_not-a-number-secret" not in str(failure.value)
