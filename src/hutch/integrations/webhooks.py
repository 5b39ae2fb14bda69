"""Calling a webhook tool: the arguments POSTed as JSON through the egress guard, signed with its secret."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
from typing import Any

from hutch.core.egress import EgressError, EgressPolicy, fetch
from hutch.integrations.gateway import ToolAnswer

SIGNATURE_HEADER = "X-Hutch-Signature"
MAX_ANSWER_BYTES = 1024 * 1024  # a longer answer fails; what the model sees is capped lower still


class WebhookFailed(Exception):
    """The webhook did not answer usefully; the message is one sentence for people."""


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hutch-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def call_webhook(
    url: str,
    secret: str,
    tool_name: str,
    arguments: dict[str, Any],
    policy: EgressPolicy,
    *,
    time_limit: float,
    call_id: str | None = None,
) -> ToolAnswer:
    """POST ``arguments`` to the tool's URL; its JSON answer (or text) is the tool's result.

    Raises :class:`WebhookFailed` when the URL is refused or does not answer in time, or answers with an
    error status.
    """
    body = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hutch-Webhook-Tool",
        SIGNATURE_HEADER: signature(secret, body),
        "X-Hutch-Tool": tool_name,
    }
    if call_id:
        headers["X-Hutch-Call-Id"] = call_id
    try:
        answer = await fetch(
            url,
            policy,
            method="POST",
            headers=headers,
            content=body,
            time_limit=time_limit,
            max_bytes=MAX_ANSWER_BYTES,
            max_redirects=0,  # a signed POST goes where its owner said, nowhere else
        )
    except EgressError as exc:
        raise WebhookFailed(str(exc)) from None
    if answer.status_code >= 400:
        return ToolAnswer(f"HTTP {answer.status_code}: {answer.text[:500]}", is_error=True)
    text = answer.text
    if answer.media_type == "application/json" or answer.media_type.endswith("+json"):
        with contextlib.suppress(ValueError):  # else given as it came
            text = json.dumps(json.loads(text), ensure_ascii=False)
    return ToolAnswer(text, is_error=False)
