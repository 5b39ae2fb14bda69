"""Refused inbound webhooks (bad signatures, foreign senders) counted per source; a spike alerts the admins.

One refusal is normal (a probe, a rotated secret caught mid-way); many in a few minutes mean a secret is out
of date or someone is forging calls. Counted on the shared rate limiter after the answer is sent, so a
refusal stays as fast as before.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hutch.alerts.models import Severity
from hutch.alerts.service import raise_alert
from hutch.db.engine import unit_of_work

log = structlog.get_logger(__name__)
REFUSED = frozenset({400, 401, 403})
SPIKE = 20  # refusals per source in the window below that raise an alert
WINDOW_SECONDS = 300


class WebhookWatch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching)
        if status in REFUSED:
            await self._refused(scope["app"].state.resources, path.split("/")[2])

    async def _refused(self, resources: Any, source: str) -> None:
        try:
            decision = await resources.rate_limiter.hit(f"webhook-refused:{source}", SPIKE, WINDOW_SECONDS)
            if decision.allowed:
                return
            async with unit_of_work(resources.database, resources.jobs) as uow:
                await raise_alert(
                    uow,
                    "webhook_refusals",
                    Severity.WARNING,
                    f"Many refused {source} webhooks",
                    f"More than {SPIKE} {source} webhook calls were refused within "
                    f"{WINDOW_SECONDS // 60} minutes (bad or missing signatures): check the webhook "
                    "secret, or someone is forging calls.",
                    dedup_key=f"webhook_refusals:{source}",
                )
        except Exception:
            log.exception("could not count a refused webhook", source=source)
