"""The platform's side of a dedicated runtime: send a turn with its recent history, get the answer back.

The runtime is stateless apart from its workspace, so each call carries what the shared engine would have
loaded: the conversation's summary, retrieved knowledge, and the last messages within the history budget,
and what the plan allows (the browser, metered tool calls; ``hutch.runtimes.wire``). The answer comes as
events: the screenshots of the runtime's browser are stored as they come (the live view shows them), then
the outcome with its tool calls, stored with the answer like a shared agent's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.browser.agent_browser import AgentBrowser
from hutch.browser.pool import DownloadedFile
from hutch.core.logging import redact_text
from hutch.core.security import SecretBox
from hutch.engine.catalog import Catalog
from hutch.engine.runner import APOLOGY, TurnOutcome
from hutch.runtimes.repository import RuntimeRepository
from hutch.runtimes.wire import (
    CLOSE_PATH,
    DOWNLOAD_EVENT,
    EXTENSION,
    MAX_SCREENSHOT_BYTES,
    MAX_SCREENSHOTS_PER_TURN,
    MAX_TOOL_CALLS,
    OUTCOME_EVENT,
    SCREENSHOT_EVENT,
    BrowserGrant,
    CloseTaskBrowser,
    PlatformTurn,
)

log = structlog.get_logger(__name__)
TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # the runtime sends a comment every 15 s while it works
CLOSE_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
JPEG = b"\xff\xd8\xff"
# One event: a screenshot (base64) or a downloaded file, whose bounds the browser's limits set.
MAX_EVENT_BYTES = 64 * 1024 * 1024
RECORD_FIELDS = frozenset(
    {"name", "args", "result", "tool", "ok", "ms", "metered", "cost_micro_usd", "screenshot"}
)


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
    target: RuntimeTarget,
    catalog: Catalog,
    messages: list[dict[str, Any]],
    user: str | None,
    model: str,
    *,
    browser: AgentBrowser | None = None,
    tool_calls: tuple[int, int] | None = None,
) -> TurnOutcome:
    """One turn answered by the runtime; a failure is an apology with the reason, like the engine's.

    ``browser``: the turn's browser when the plan allows it — the runtime drives its own, and each screen
    it sends is kept through this one's keeper (as the platform's, under the turn's org, agent and
    conversation or task); files it downloaded join ``browser.downloads``. ``tool_calls``: the metered
    tool calls the plan still allows this month, and how many it allows (None: no limit)."""
    reader = _AnswerReader(browser)
    try:
        extension = PlatformTurn(
            browser=_grant(browser) if browser is not None else None,
            tool_calls_left=tool_calls[0] if tool_calls else None,
            tool_calls_limit=tool_calls[1] if tool_calls else None,
        )
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            EXTENSION: extension.model_dump(mode="json", exclude_none=True),
        }
        if user:
            body["user"] = user
        async with (
            httpx.AsyncClient(timeout=TIMEOUT) as client,
            client.stream(
                "POST",
                f"{target.endpoint}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {target.token}"},
            ) as answer,
        ):
            answer.raise_for_status()
            await reader.read(answer.aiter_bytes())
        if reader.outcome is None:
            raise AnswerRefused("the answer ended before its outcome")
        return _outcome(reader.outcome, reader.tool_calls(reader.outcome), catalog, model)
    except (httpx.HTTPError, AnswerRefused, KeyError, IndexError, TypeError, ValueError) as exc:
        error = redact_text(f"dedicated runtime: {exc.__class__.__name__}: {exc}")[:2000]
        log.warning("runtime reply failed", endpoint=target.endpoint, error=error)
        return TurnOutcome(text=APOLOGY, ok=False, error=error, model=model)


def _outcome(
    data: dict[str, Any], records: list[dict[str, Any]], catalog: Catalog, model: str
) -> TurnOutcome:
    """The runtime's outcome as the platform counts it: its cost from the catalog, its metered calls."""
    answered_by = str(data.get("model") or model)
    spec = catalog.find(answered_by)
    input_tokens = max(0, int(data.get("input_tokens") or 0))
    output_tokens = max(0, int(data.get("output_tokens") or 0))
    metered = [r for r in records if r.get("metered")]
    tool_cost = sum(max(0, int(r.get("cost_micro_usd") or 0)) for r in metered)
    return TurnOutcome(
        text=str(data.get("text") or ""),
        ok=bool(data.get("ok")),
        error=redact_text(str(data["error"]))[:2000] if data.get("error") else None,
        model=answered_by,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_micro_usd=(spec.cost_micro_usd(input_tokens, output_tokens) if spec else 0) + tool_cost,
        tool_calls=records,
        metered_tool_calls=len(metered),
        tool_cost_micro_usd=tool_cost,
    )


async def close_task_browser(target: RuntimeTarget, task_id: str) -> bool:
    """Close the task's browser on the runtime (the task ended); whether one was open. A runtime that does
    not answer is only logged: its browser closes after its idle time anyway."""
    try:
        async with httpx.AsyncClient(timeout=CLOSE_TIMEOUT) as client:
            answer = await client.post(
                f"{target.endpoint}{CLOSE_PATH}",
                json=CloseTaskBrowser(task_id=task_id).model_dump(),
                headers={"Authorization": f"Bearer {target.token}"},
            )
        answer.raise_for_status()
        return bool(answer.json().get("closed"))
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.warning(
            "closing a task's browser on its runtime failed", endpoint=target.endpoint, error=str(exc)
        )
        return False


class AnswerRefused(Exception):
    """The runtime's answer broke the format or its bounds; the reason, in words."""


def _grant(browser: AgentBrowser) -> BrowserGrant:
    scope = browser.scope
    return BrowserGrant(
        at_once=browser.at_once,
        conversation_id=scope.conversation_id,
        task_id=scope.task_id,
        step=scope.step,
        reference=scope.reference,
    )


class _AnswerReader:
    """Reads the runtime's events (``hutch.runtimes.wire``), bounded, keeping screens as they come."""

    def __init__(self, browser: AgentBrowser | None) -> None:
        self.browser = browser
        self.outcome: dict[str, Any] | None = None
        self.screens: dict[str, str] = {}  # the runtime's screenshot id → the one stored here
        self.received = 0
        self.downloaded = 0

    async def read(self, chunks: AsyncIterator[bytes]) -> None:
        buffer = b""
        async for piece in chunks:
            buffer += piece
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                await self._event(block.decode())
            if len(buffer) > MAX_EVENT_BYTES:
                raise AnswerRefused(f"an event of the answer is over {MAX_EVENT_BYTES} bytes")
        if buffer.strip():
            await self._event(buffer.decode())

    async def _event(self, block: str) -> None:
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
        if not data or data == "[DONE]":
            return
        if name not in (SCREENSHOT_EVENT, DOWNLOAD_EVENT, OUTCOME_EVENT):
            return
        event = json.loads(data)
        if not isinstance(event, dict):
            raise AnswerRefused(f"a {name} event is not an object")
        if name == SCREENSHOT_EVENT:
            await self._screenshot(event)
        elif name == DOWNLOAD_EVENT:
            self._download(event)
        else:
            self.outcome = event

    async def _screenshot(self, event: dict[str, Any]) -> None:
        self.received += 1
        if self.browser is None or self.received > MAX_SCREENSHOTS_PER_TURN:
            raise AnswerRefused("the runtime sent screenshots it was not asked for")
        image = base64.b64decode(str(event["image"]), validate=True)
        if len(image) > MAX_SCREENSHOT_BYTES or not image.startswith(JPEG):
            raise AnswerRefused("a screenshot of the runtime is not a JPEG within the size allowed")
        tool_call_id = event.get("tool_call_id")
        kept = await self.browser.keeper.keep(
            self.browser.scope,  # the turn's own org, agent and conversation or task: never the runtime's say
            image,
            str(event.get("action") or "screenshot")[:40],
            str(tool_call_id)[:100] if tool_call_id else None,
            str(event.get("page_url") or "")[:4000],
        )
        if kept is not None:
            self.screens[str(event["id"])] = kept

    def _download(self, event: dict[str, Any]) -> None:
        if self.browser is None:
            raise AnswerRefused("the runtime sent a file it was not asked for")
        data = base64.b64decode(str(event["data"]), validate=True)
        self.downloaded += len(data)
        if self.downloaded > self.browser.max_download_bytes:
            raise AnswerRefused("the runtime sent more downloaded files than allowed")
        name = str(event.get("filename") or "download")[:200]
        self.browser.downloads.append(AgentBrowser._kept(DownloadedFile(name, data)))

    def tool_calls(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """The outcome's tool call records, each naming only a screenshot stored here for this turn."""
        records: list[dict[str, Any]] = []
        for raw in (outcome.get("tool_calls") or [])[:MAX_TOOL_CALLS]:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                continue
            record = {k: v for k, v in raw.items() if k in RECORD_FIELDS}
            record["name"] = raw["name"][:100]
            if isinstance(record.get("result"), str):
                record["result"] = record["result"][:2000]
            record.pop("screenshot", None)
            shot = self.screens.get(str(raw.get("screenshot")))
            if shot is not None:
                record["screenshot"] = shot
            records.append(record)
        return records
