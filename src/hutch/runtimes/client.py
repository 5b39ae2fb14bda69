"""The platform's side of a dedicated runtime: send a turn with its recent history, get the answer back.

The runtime is stateless apart from its workspace, so each call carries what the shared engine would have
loaded: the conversation's summary, retrieved knowledge, and the last messages within the history budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.core.logging import redact_text
from hutch.core.security import SecretBox
from hutch.engine.catalog import Catalog
from hutch.engine.runner import APOLOGY, TurnOutcome
from hutch.runtimes.repository import RuntimeRepository

log = structlog.get_logger(__name__)
TIMEOUT = httpx.Timeout(120.0, connect=5.0)


@dataclass(frozen=True)
class RuntimeTarget:
    endpoint: str
    token: str


async def ready_runtime(session: AsyncSession, secret_box: SecretBox, agent_id: str) -> RuntimeTarget | None:
    """The agent's runtime if it is ready to answer; None sends the turn to the shared workers."""
    row = await RuntimeRepository(session).ready_of_agent(agent_id)
    if row is None or row.endpoint is None:
        return None
    return RuntimeTarget(row.endpoint, secret_box.decrypt(row.gateway_token_encrypted))


async def complete(
    target: RuntimeTarget, catalog: Catalog, messages: list[dict[str, Any]], user: str | None, model: str
) -> TurnOutcome:
    """One turn answered by the runtime; a failure is an apology with the reason, like the engine's."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    if user:
        body["user"] = user
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            answer = await client.post(
                f"{target.endpoint}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {target.token}"},
            )
        answer.raise_for_status()
        data = answer.json()
        text = data["choices"][0]["message"]["content"] or ""
        usage = data.get("usage") or {}
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        error = redact_text(f"dedicated runtime: {exc.__class__.__name__}: {exc}")[:2000]
        log.warning("runtime reply failed", endpoint=target.endpoint, error=error)
        return TurnOutcome(text=APOLOGY, ok=False, error=error, model=model)
    answered_by = str(data.get("model") or model)
    spec = catalog.find(answered_by)
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    return TurnOutcome(
        text=text,
        ok=True,
        model=answered_by,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_micro_usd=spec.cost_micro_usd(input_tokens, output_tokens) if spec else 0,
    )
