"""Sign webhook payloads exactly as Stripe does, and spoil them on purpose for negative tests.

Stripe sends ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed by the
endpoint secret>``; receivers recompute it and refuse timestamps older than a tolerance (300 s in the SDK).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "Stripe-Signature"
# Older than the SDK's default tolerance of 300 seconds.
STALE_AFTER_SECONDS = 600


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_hex(24)}"


def stripe_signature(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` (the exact bytes that will be sent)."""
    body = payload.encode() if isinstance(payload, str) else payload
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


@dataclass(frozen=True)
class SignedPayload:
    """A webhook request ready to post: the raw body and its headers."""

    body: bytes
    signature: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8", SIGNATURE_HEADER: self.signature}

    def json(self) -> Any:
        return json.loads(self.body)


def sign_event(
    event: Mapping[str, Any] | bytes | str,
    secret: str,
    *,
    timestamp: int | None = None,
    wrong_secret: bool = False,
    stale: bool = False,
    tampered: bool = False,
) -> SignedPayload:
    """Serialize ``event`` (unless already raw) and sign it as Stripe would for the endpoint ``secret``.

    ``wrong_secret`` signs with another secret, ``stale`` dates the signature past the SDK's tolerance,
    ``tampered`` changes the body after signing: each must be refused by a correct receiver.
    """
    if isinstance(event, Mapping):
        body = json.dumps(event, indent=2).encode()
    else:
        body = event.encode() if isinstance(event, str) else event
    ts = int(time.time()) if timestamp is None else timestamp
    if stale:
        ts -= STALE_AFTER_SECONDS
    signature = stripe_signature(body, new_webhook_secret() if wrong_secret else secret, ts)
    if tampered:
        body = _tamper(body)
    return SignedPayload(body, signature)


def _tamper(body: bytes) -> bytes:
    """The kind of change an attacker would make: same JSON shape, one value altered."""
    try:
        data = json.loads(body)
    except ValueError:
        return body + b" "
    if isinstance(data, dict):
        obj = data.get("data", {}).get("object") if isinstance(data.get("data"), dict) else None
        target = obj if isinstance(obj, dict) else data
        target["metadata"] = {**(target.get("metadata") or {}), "tampered": "true"}
        return json.dumps(data, indent=2).encode()
    return body + b" "
