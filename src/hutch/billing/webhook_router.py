"""``POST /webhooks/stripe``: Stripe's signed events; a bad or missing signature is a 400, stored nowhere."""

from __future__ import annotations

import json
from typing import Any

import stripe
from fastapi import APIRouter, Request

from hutch.billing.webhooks import WebhookProcessor
from hutch.core.errors import BadRequest, error_responses
from hutch.http.dependencies import ResourcesDep, UoWDep

router = APIRouter(tags=["webhooks"])
SIGNATURE_TOLERANCE_SECONDS = 300


@router.post("/webhooks/stripe", responses=error_responses(BadRequest))
async def stripe_webhook(request: Request, uow: UoWDep, resources: ResourcesDep) -> dict[str, str]:
    """Verify `Stripe-Signature` with `HUTCH_STRIPE_WEBHOOK_SECRET`, then apply the event once."""
    secret = resources.settings.stripe_webhook_secret
    if secret is None:
        raise BadRequest("Stripe webhooks are not configured here (HUTCH_STRIPE_WEBHOOK_SECRET is missing).")
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    if not signature:
        raise BadRequest("Missing Stripe-Signature header.")
    try:
        stripe.Webhook.construct_event(
            payload, signature, secret.get_secret_value(), tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
        event: Any = json.loads(payload)
    except stripe.SignatureVerificationError:
        raise BadRequest("Invalid Stripe signature.") from None
    except ValueError:
        raise BadRequest("The body is not a Stripe event.") from None
    if not (
        isinstance(event, dict)
        and all(key in event for key in ("id", "type", "created"))
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise BadRequest("The body is not a Stripe event.")
    status = await WebhookProcessor(uow, resources.plans, resources.stripe).handle(event)
    return {"status": status}
